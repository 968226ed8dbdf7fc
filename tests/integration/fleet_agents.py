"""Real ``vifscope serve`` agents for fleet tests: one process per "host", each on its own
libvirt test-driver node file and an ephemeral loopback port, stopped (SIGCONT first, in case
a test froze it) even when the test fails."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"


@dataclass(frozen=True)
class Guest:
    name: str
    macs: tuple[str, ...]
    running: bool = True


@dataclass
class Agent:
    name: str
    url: str
    proc: subprocess.Popen[str]


def node_xml(guests: Sequence[Guest]) -> str:
    """A test-driver node file: each guest with bridge vifs on a bridge no host has (verdict
    'missing' when running, 'inactive' when shut off: the fleet only passes verdicts on)."""
    doms = []
    for g in guests:
        nics = "".join(
            f"<interface type='bridge'><mac address='{mac}'/><source bridge='vs-f-nobr'/></interface>" for mac in g.macs
        )
        state = "" if g.running else "<test:runstate>5</test:runstate>"
        doms.append(
            f"<domain type='test' xmlns:test='{TEST_NS}'><name>{g.name}</name><uuid>{uuid.uuid4()}</uuid>"
            f"<memory>65536</memory><os><type>hvm</type></os>{state}<devices>{nics}</devices></domain>"
        )
    return "<node>" + "".join(doms) + "</node>"


def closed_port_url() -> str:
    """A loopback URL where nothing listens (bound, then closed: refused, not filtered)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGCONT)  # a stopped process ignores SIGTERM until continued
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def agent(
    workdir: Path, name: str, guests: Sequence[Guest], *extra: str, log: Path | None = None, node: str | None = None
) -> Iterator[Agent]:
    """``log``: the agent's stderr goes to that file (with ``--access-log``: one line per
    request, status included). ``node``: the node file's XML instead of one made of ``guests``
    (the agent reads the file again on each snapshot: rewriting it changes the host)."""
    node_file = workdir / f"{name}.xml"
    node_file.write_text(node if node is not None else node_xml(guests))
    cmd = [sys.executable, "-m", "vifscope", "-c", f"test://{node_file}", "serve", "--json", "--listen", "127.0.0.1:0"]
    cmd += ["--host-id", f"id-{name}", "--audit-log", str(workdir / f"{name}.audit"), "--interval", "0.5", *extra]
    with ExitStack() as files:
        err = files.enter_context(log.open("w")) if log is not None else subprocess.PIPE
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                why = log.read_text() if log is not None else proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"serve did not start: {why}")
            yield Agent(name, json.loads(line)["url"], proc)
        finally:
            _stop(proc)


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (subjectAltName: what a client checks) and its key."""
    cert, key = workdir / "agent-cert.pem", workdir / "agent-key.pem"
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=vs-f-agent"]
    cmd += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return cert, key


@contextmanager
def agents(workdir: Path, hosts: dict[str, Sequence[Guest]]) -> Iterator[dict[str, Agent]]:
    with ExitStack() as stack:
        yield {name: stack.enter_context(agent(workdir, name, guests)) for name, guests in hosts.items()}


@contextmanager
def hub_server(workdir: Path, inventory: Path | None, *db: str) -> Iterator[str]:
    """``vifscope serve --fleet``: a hub (on the test driver's default host) for ``inventory``,
    or (None) for the store of ``db`` (``"--db", URL``)."""
    cmd = [sys.executable, "-m", "vifscope", "-c", "test:///default", "serve", "--json", "--listen", "127.0.0.1:0"]
    cmd += ["--fleet", *([str(inventory)] if inventory else []), *db]
    cmd += ["--fleet-timeout", "3", "--audit-log", str(workdir / "hub.audit")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"hub did not start: {proc.stderr.read() if proc.stderr else ''}"
        yield json.loads(line)["url"]
    finally:
        _stop(proc)
