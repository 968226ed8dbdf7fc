"""Run ``vifscope watch --json`` as a user would (a child process) and wait for its lines."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vifscope.lab.topology import LabSpec

Event = dict[str, Any]


class WatchProc:
    """A running watch; every JSON line it prints is kept in ``seen`` (with arrival time)."""

    def __init__(self, args: list[str], as_json: bool = True, uri: str | None = None) -> None:
        self.as_json = as_json
        connect = ["-c", uri] if uri else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vifscope", *connect, "watch", *(["--json"] if as_json else []), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.seen: list[tuple[float, Event]] = []
        self._lines: queue.SimpleQueue[tuple[float, Event] | None] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            doc = json.loads(line) if self.as_json else {"event": "text", "line": line.rstrip("\n")}
            self._lines.put((time.monotonic(), doc))
        self._lines.put(None)

    def wait(self, match: Callable[[Event], bool], timeout: float = 10.0) -> tuple[float, Event]:
        """The first line (already seen or new) that matches; AssertionError on timeout."""
        for at, ev in self.seen:
            if match(ev):
                return at, ev
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                raise AssertionError(f"watch exited (rc {self.proc.wait()}): {self.stderr()}")
            self.seen.append(item)
            if match(item[1]):
                return item
        raise AssertionError(f"no matching watch line in {timeout} s; seen: {[e for _, e in self.seen][-8:]}")

    def drain(self, seconds: float) -> list[Event]:
        """Everything printed in the next ``seconds``."""
        end = time.monotonic() + seconds
        got: list[Event] = []
        while (left := end - time.monotonic()) > 0:
            try:
                item = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                break
            self.seen.append(item)
            got.append(item[1])
        return got

    def events(self, kind: str) -> list[Event]:
        return [e for _, e in self.seen if e["event"] == kind]

    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@contextmanager
def watching(lab: LabSpec, *args: str, as_json: bool = True, uri: str | None = None) -> Iterator[WatchProc]:
    """watch restricted to this lab's domains (never another lab's), stopped on exit."""
    scope = [a for g in lab.guests() for a in ("-d", g.name)]
    w = WatchProc([*scope, *args], as_json, uri)
    started = (
        (lambda e: e["event"] == "start") if as_json else (lambda e: e["line"].split(" ", 1)[1].startswith("watching"))
    )
    try:
        w.wait(started, 30)
        yield w
    finally:
        w.stop()
        w.drain(2.0)  # the lines printed while stopping (ends at EOF)


def is_vif(ev: Event, domain: str, index: int = 0) -> bool:
    return ev.get("domain") == domain and ev.get("index", index) == index


def transition(domain: str, to: str, index: int = 0) -> Callable[[Event], bool]:
    return lambda e: e["event"] == "transition" and is_vif(e, domain, index) and e["to"] == to


def heal_of(domain: str, target: str) -> Callable[[Event], bool]:
    return lambda e: e["event"] == "heal" and e["domain"] == domain and e["target"] == target


def audit_lines(path: Path) -> list[Event]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class UnixProxy:
    """A unix-socket forwarder in front of libvirtd's socket.

    ``close()`` drops every connection and stops listening — to a client that is exactly
    libvirtd going away — without touching the real libvirtd other test runs share;
    ``open()`` listens again, as a restarted libvirtd would.
    """

    def __init__(self, path: Path, upstream: Path = Path("/run/libvirt/libvirt-sock")) -> None:
        self.path, self.upstream = path, upstream
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.path}"

    def open(self) -> None:
        self.path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.path))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # closed
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(self.upstream))
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass  # one side closed: the other is shut below
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns = []
        self.path.unlink(missing_ok=True)
