"""Asking many vifscope agents (``vifscope serve``) the same questions at once: the hub's only
HTTP code.

Every agent gets the same GETs, concurrently, with at most ``limit`` agents in flight. Each
agent has one deadline for all its answers, counted from when its turn starts (not from when
it was queued): a hung agent (SIGSTOPped, a dead NFS mount under libvirtd, a half-open TCP
path) costs its own line in the result after ``timeout`` seconds and delays no other agent's
answer. A refused connection, an HTTP error or a body that is not JSON is likewise that
agent's ``error``; nothing here raises for one agent's sake.

A target may carry the answers the asker already holds (``held``: each path's ETag and
body): they are sent as ``If-None-Match``. When every path answers 304 the reply is
``unchanged`` (no body moved, nothing parsed: the asker's last result stands); when only
some do, the held bodies of those are parsed so the reply is whole.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

NOT_AGENT = "is this a vifscope serve URL?"


@dataclass(frozen=True)
class Held:
    """An answer as the agent sent it: its ETag and body (parsed only when needed)."""

    etag: str
    body: bytes


HeldAnswers = tuple[tuple[str, Held], ...]  # (path, held answer)


@dataclass(frozen=True)
class AgentTarget:
    name: str
    url: str  # base URL, ends with "/"
    token: str | None = None  # sent as a bearer token when set
    ca_file: Path | None = None  # https: the CA to check the agent's certificate against (None: the system's)
    held: HeldAnswers = ()  # answers the asker holds: asked for with If-None-Match


@dataclass(frozen=True)
class AgentReply:
    """One agent's answers, by path (all of them), or the one-line reason there are none."""

    name: str
    answers: tuple[tuple[str, Any], ...]  # (path, parsed JSON) in the order asked; () when unchanged
    error: str | None
    seconds: float
    held: HeldAnswers = ()  # every tagged answer now held, for the next ask's If-None-Match
    unchanged: bool = False  # every path answered 304: nothing moved, the asker's last result stands

    def answer(self, path: str) -> Any:
        return dict(self.answers).get(path)

    def whole(self) -> AgentReply:
        """An unchanged reply with the held bodies parsed (for an asker that lost its result)."""
        if not self.unchanged:
            return self
        answers = tuple(_parse(_Got(path, h, True)) for path, h in self.held)
        return AgentReply(self.name, answers, None, self.seconds, self.held)


@dataclass(frozen=True)
class Asking:
    timeout: float  # seconds per agent, for all its answers
    optional: frozenset[str] = frozenset()  # paths an older agent may not have: 404 → None


class AgentFailed(Exception):
    pass


@dataclass(frozen=True)
class _Got:
    path: str
    held: Held | None  # None: an optional path the agent does not have
    not_modified: bool  # 304: ``held`` is the copy the asker already had


async def _get(client: httpx.AsyncClient, target: AgentTarget, path: str, optional: bool) -> _Got:
    headers = {"Accept": "application/json"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    mine = dict(target.held).get(path)
    if mine is not None:
        headers["If-None-Match"] = mine.etag
    resp = await client.get(target.url + path, headers=headers)
    if resp.status_code == 304 and mine is not None:
        return _Got(path, mine, True)
    if resp.status_code == 404 and optional:  # an agent older than the endpoint
        return _Got(path, None, False)
    if resp.status_code != 200:
        raise AgentFailed(f"GET /{path}: HTTP {resp.status_code}{_reason(resp)}")
    return _Got(path, Held(resp.headers.get("etag", ""), resp.content), False)


def _parse(got: _Got) -> tuple[str, Any]:
    if got.held is None:
        return got.path, None
    try:
        return got.path, json.loads(got.held.body)
    except ValueError as exc:
        raise AgentFailed(f"GET /{got.path}: the answer is not JSON ({NOT_AGENT})") from exc


def _reply(name: str, got: Sequence[_Got], seconds: float) -> AgentReply:
    held = tuple((g.path, g.held) for g in got if g.held is not None and g.held.etag)
    if got and all(g.not_modified for g in got):
        return AgentReply(name, (), None, seconds, held, unchanged=True)
    return AgentReply(name, tuple(map(_parse, got)), None, seconds, held)


def _reason(resp: httpx.Response) -> str:
    """The agent's own one-line error when it sent one (vifscope's {"error", "hint"})."""
    try:
        doc = json.loads(resp.content)
    except ValueError:
        return f" ({NOT_AGENT})" if resp.status_code == 404 else ""
    return f": {doc['error']}" if isinstance(doc, dict) and isinstance(doc.get("error"), str) else ""


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    detail = _root_os_error(exc) or str(exc) or type(exc).__name__
    return f"cannot connect: {detail}" if isinstance(exc, httpx.ConnectError) else f"HTTP failure: {detail}"


def _root_os_error(exc: BaseException) -> str | None:
    """The OSError under httpx's wrappers ("Connection refused"), which says more than
    httpx's own "All connection attempts failed"."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):  # its errno is OpenSSL's, not the C library's
            why = getattr(seen, "verify_message", None)  # certificate checks only
            return f"TLS: {seen.reason or seen}" + (f" ({why})" if why else "")
        if isinstance(seen, OSError) and (seen.errno or seen.strerror):
            return os.strerror(seen.errno) if seen.errno else seen.strerror
        seen = seen.__cause__ or seen.__context__
    return None


async def _ask(
    client: httpx.AsyncClient, gate: asyncio.Semaphore, target: AgentTarget, paths: Sequence[str], ask: Asking
) -> AgentReply:
    timeout = ask.timeout
    async with gate:
        start = time.monotonic()
        error: str | None = None
        try:
            async with asyncio.timeout(timeout):
                got = await asyncio.gather(*(_get(client, target, p, p in ask.optional) for p in paths))
            return _reply(target.name, got, round(time.monotonic() - start, 3))
        except TimeoutError:
            error = f"no answer within {timeout:g} s"
        except httpx.HTTPError as exc:
            error = _describe(exc)
        except AgentFailed as exc:
            error = str(exc)
        return AgentReply(target.name, (), error, round(time.monotonic() - start, 3))


def _verify(ca_file: Path | None) -> ssl.SSLContext | str:
    """The TLS check for agents with this CA file; a file that cannot be used is a string: the
    error every agent that names it gets."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        return f"ca_file {ca_file}: {getattr(exc, 'strerror', None) or exc}"


_PLAIN = Path("/nonexistent/plain-http")  # the client of http:// targets without a CA file: no TLS at all


def _tls_group(t: AgentTarget) -> Path | None:
    plain = t.ca_file is None and not t.url.startswith("https:")
    return _PLAIN if plain else t.ca_file


async def ask_all(
    targets: Sequence[AgentTarget], paths: Sequence[str], *, timeout: float, limit: int, optional: Collection[str] = ()
) -> list[AgentReply]:
    """Every target's reply, in the targets' order. One client per CA file (a client has one
    TLS setting); they share the ``limit``. Plain http agents get a client that loads no CA
    certificates (the system's bundle costs ~40 ms of CPU a round: more than a fleet of 304s)."""
    ask = Asking(timeout, frozenset(optional))
    gate = asyncio.Semaphore(max(1, limit))
    # httpx's own timeout backs up the deadline (it also bounds the connect of a queued request)
    limits = httpx.Limits(max_connections=max(1, limit) * max(1, len(paths)))
    groups = dict.fromkeys(map(_tls_group, targets))
    verify: dict[Path | None, ssl.SSLContext | str | bool] = {
        ca: False if ca is _PLAIN else _verify(ca) for ca in groups
    }
    clients = {
        ca: httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits, verify=v)
        for ca, v in verify.items()
        if not isinstance(v, str)
    }

    async def one(t: AgentTarget) -> AgentReply:
        client = clients.get(_tls_group(t))
        if client is None:
            return AgentReply(t.name, (), str(verify[_tls_group(t)]), 0.0)
        return await _ask(client, gate, t, paths, ask)

    try:
        return list(await asyncio.gather(*(one(t) for t in targets)))
    finally:
        for client in clients.values():
            await client.aclose()


def fetch_all(
    targets: Sequence[AgentTarget], paths: Sequence[str], *, timeout: float, limit: int, optional: Collection[str] = ()
) -> list[AgentReply]:
    """``ask_all`` for a caller without an event loop (the CLI)."""
    return asyncio.run(ask_all(targets, paths, timeout=timeout, limit=limit, optional=optional))
