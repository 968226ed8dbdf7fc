"""The hub's HTTP client against real loopback sockets: a listener that never answers, a
refused port, an answer that is not an agent's, a slow queue. One agent's trouble is its own
line; the others' answers arrive."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from vifscope.sources.agents import AgentReply, AgentTarget, ask_all

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _reply(status: str, body: bytes, ctype: str = "application/json") -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()

    return handle


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)  # accepts, reads nothing back: a frozen agent


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _fleet(
    handlers: dict[str, Handler], timeout: float, limit: int = 8, optional: tuple[str, ...] = ()
) -> list[AgentReply]:
    servers = {n: await asyncio.start_server(h, "127.0.0.1", 0) for n, h in handlers.items()}
    try:
        targets = [AgentTarget(n, f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}/") for n, s in servers.items()]
        targets.append(AgentTarget("down", f"http://127.0.0.1:{_closed_port()}/"))
        return await ask_all(targets, ["api/v1/host"], timeout=timeout, limit=limit, optional=optional)
    finally:
        for s in servers.values():
            s.close()


def test_each_agents_trouble_is_its_own_line() -> None:
    handlers = {
        "good": _reply("200 OK", json.dumps({"host_id": "g"}).encode()),
        "hung": _silent,
        "web": _reply("200 OK", b"<html>", "text/html"),
        "denied": _reply("401 Unauthorized", json.dumps({"error": "bad token", "hint": ""}).encode()),
        "old": _reply("404 Not Found", b"not found", "text/plain"),
    }
    replies = {r.name: r for r in asyncio.run(_fleet(handlers, timeout=1.0))}
    assert replies["good"].error is None and replies["good"].answer("api/v1/host") == {"host_id": "g"}
    assert replies["hung"].error == "no answer within 1 s"
    assert replies["down"].error == "cannot connect: Connection refused"
    assert replies["web"].error == "GET /api/v1/host: the answer is not JSON (is this a vifscope serve URL?)"
    assert replies["denied"].error == "GET /api/v1/host: HTTP 401: bad token"
    assert replies["old"].error == "GET /api/v1/host: HTTP 404 (is this a vifscope serve URL?)"
    assert list(replies) == [*handlers, "down"]  # the targets' order
    lenient = {r.name: r for r in asyncio.run(_fleet({"old": handlers["old"]}, 1.0, optional=("api/v1/host",)))}
    assert lenient["old"].error is None and lenient["old"].answers == (("api/v1/host", None),)


def test_a_host_waiting_for_its_turn_is_not_charged_for_the_wait() -> None:
    """Two hung agents ahead of a good one with one in flight: the good one still answers
    (its deadline starts with its turn), after both of theirs ran out."""
    handlers = {"hung1": _silent, "hung2": _silent, "good": _reply("200 OK", b"{}")}
    start = time.monotonic()
    replies = {r.name: r for r in asyncio.run(_fleet(handlers, timeout=0.5, limit=1))}
    assert replies["good"].error is None and replies["good"].answer("api/v1/host") == {}
    assert replies["hung1"].error == replies["hung2"].error == "no answer within 0.5 s"
    assert time.monotonic() - start >= 1.0  # the two deadlines were served one after the other


def test_a_ca_file_that_cannot_be_used_is_the_error_of_the_hosts_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    targets = [
        AgentTarget("a", "https://127.0.0.1:1/", None, bad),
        AgentTarget("b", f"http://127.0.0.1:{_closed_port()}/"),
    ]
    a, b = asyncio.run(ask_all(targets, ["api/v1/host"], timeout=1.0, limit=4))
    assert a.error is not None and a.error.startswith(f"ca_file {bad}: ")
    assert b.error == "cannot connect: Connection refused"  # asked all the same
