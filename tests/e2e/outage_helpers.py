"""A small synthetic host served by a PRIVATE libvirtd and ovsdb-server (vifscope.lab.private),
with vifscope's daemons running in its namespace: what the dying-and-hung-sources tests kill.

The host's own libvirtd and Open vSwitch are never signalled. Requests to the daemons are made
from inside the namespace (the daemons listen on its loopback).
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.conftest import SPEC
from vifscope.lab.private import PrivateLibvirtd, PrivateOvsdb, ovs_env
from vifscope.lab.synth import SynthHost, SynthPlan, plan

# Named with the lab's prefix (VIFSCOPE_TEST_LAB_PREFIX), so two checkouts' suites do not clash.
NS = f"{SPEC.prefix}down"
STORM_BRIDGE = f"{SPEC.prefix}storm"
UP = re.compile(r'^vifscope_source_up\{source="([^"]+)"\} (\S+)$', re.M)


class Daemon:
    """A vifscope daemon in the namespace; its stdout lines (JSON) are kept in order."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self._lines: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(json.loads(line))
        self._lines.put(None)

    def wait(self, match: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        """The first line (seen before or new) that matches; AssertionError on timeout or exit."""
        for doc in self.seen:
            if match(doc):
                return doc
        while True:
            try:
                doc = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no matching line in {timeout} s; last: {self.seen[-5:]}") from None
            if doc is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"exited (rc {self.proc.wait()}): {err}")
            self.seen.append(doc)
            if match(doc):
                return doc

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class OutageHost:
    plan: SynthPlan
    libvirtd: PrivateLibvirtd
    ovsdb: PrivateOvsdb
    uri: str
    dir: Path

    @property
    def env(self) -> dict[str, str]:
        return ovs_env(self.ovsdb)

    def daemon(self, *args: str) -> Daemon:
        argv = ["ip", "netns", "exec", NS, sys.executable, "-m", "vifscope", "-c", self.uri, *args]
        return Daemon(argv, self.env)

    def listening(self, *args: str) -> tuple[Daemon, str]:
        """``exporter`` / ``serve`` on a free port: the daemon and its base URL."""
        d = self.daemon(*args, "--json", "--listen", "127.0.0.1:0", "--audit-log", str(self.dir / "audit.jsonl"))
        url = str(d.wait(lambda doc: "url" in doc)["url"])
        return d, url[: url.index("/", len("http://"))]

    def ip(self, *args: str) -> str:
        return subprocess.run(["ip", "-n", NS, *args], check=True, capture_output=True, text=True).stdout

    def master(self, tap: str) -> str | None:
        found: str | None = json.loads(self.ip("-j", "link", "show", tap))[0].get("master")
        return found


def line(event: str, **fields: object) -> Callable[[dict[str, Any]], bool]:
    """A matcher for a daemon's JSON line: ``line("source", source="ovs", state="up")``."""
    return lambda d: d.get("event") == event and all(d.get(k) == v for k, v in fields.items())


FETCH = r"""
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as resp:
        status, body = resp.status, resp.read()
except urllib.error.HTTPError as exc:
    status, body = exc.code, exc.read()
sys.stdout.write(f"{status}\n"); sys.stdout.flush(); sys.stdout.buffer.write(body)
"""


def fetch(url: str, max_time: float = 60.0) -> tuple[int, str]:
    """(HTTP status, body) from inside the namespace; a failed request is an AssertionError."""
    cmd = ["ip", "netns", "exec", NS, sys.executable, "-c", FETCH, url, str(max_time)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"GET {url} failed: {proc.stderr.strip()[-300:]}"
    status, _, body = proc.stdout.partition("\n")
    return int(status), body


def sources_up(base: str) -> dict[str, bool]:
    """What one scrape says: source -> up (it must be a complete answer)."""
    status, body = fetch(base + "/metrics")
    assert status == 200, body[:200]
    return {m[0]: float(m[1]) == 1.0 for m in UP.findall(body)}


def api_down(base: str) -> set[str]:
    """The sources one /api/v1/vifs answer names in ``source_errors``."""
    status, body = fetch(base + "/api/v1/vifs")
    assert status == 200, body[:200]
    return {str(e["source"]) for e in json.loads(body).get("source_errors", ())}


@contextmanager
def outage_host(domains: int = 2, nics: int = 2) -> Iterator[OutageHost]:
    p = plan(domains=domains, nics=nics, bridges=2, fault_every=10**9, shutoff_every=10**9, prefix=f"{SPEC.prefix}e")
    with ExitStack() as stack:
        host = stack.enter_context(SynthHost(p, NS))
        host_ip = ["ip", "-n", NS, "link", "set", "lo", "up"]
        subprocess.run(host_ip, check=True)
        libvirtd, ovsdb = stack.enter_context(PrivateLibvirtd()), stack.enter_context(PrivateOvsdb())
        libvirtd.start()
        ovsdb.start()
        yield OutageHost(p, libvirtd, ovsdb, libvirtd.uri(host.node_file), host.dir)
