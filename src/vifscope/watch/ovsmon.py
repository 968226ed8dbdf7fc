"""OVSDB as a live source: a JSON-RPC ``monitor`` (RFC 7047) on ovsdb-server's unix socket.

Why not ``ovsdb-client monitor``: it takes one table per process, and it prints nothing on
connect when the table is empty, so it cannot tell "connected" from "still trying". Our
own monitor asks for Bridge, Port and Interface in one request; the reply (the initial
contents) is the "up" signal, every ``update`` notification becomes an OvsChanged, and a
closed socket a SourceDown, after which we reconnect with back-off. The engine then reads
OVSDB with the same ``ovs-vsctl`` query ``status`` uses.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from vifscope.watch.backoff import Backoff
from vifscope.watch.events import OvsChanged, SourceDown, WatchEvent

Post = Callable[[WatchEvent], None]

MONITOR_REQUEST = {
    "id": "vifscope-monitor",
    "method": "monitor",
    "params": [
        "Open_vSwitch",
        None,
        {
            "Bridge": {"columns": ["name", "ports"]},
            "Port": {"columns": ["name", "interfaces"]},
            "Interface": {"columns": ["name", "external_ids", "error", "ofport"]},
        },
    ],
}


ECHO_ID = "vifscope-echo"
# Silence this long makes us send an echo; as long again with no answer, ovsdb-server is hung
# (its socket accepts, nothing answers): the session ends as if closed. OVS' own clients probe
# the same way (inactivity_probe, 5 s by default).
PROBE_INTERVAL = 5.0


def default_db_socket() -> Path:
    """ovsdb-server's socket: $OVS_RUNDIR/db.sock, else /var/run/openvswitch/db.sock."""
    return Path(os.environ.get("OVS_RUNDIR", "/var/run/openvswitch")) / "db.sock"


def split_json_stream(buffer: str) -> tuple[list[dict[str, object]], str]:
    """Complete JSON objects at the start of ``buffer`` and the unparsed rest.

    OVSDB's JSON-RPC stream has no delimiters: objects follow each other directly.
    """
    decoder = json.JSONDecoder()
    out: list[dict[str, object]] = []
    pos = 0
    while True:
        while pos < len(buffer) and buffer[pos].isspace():
            pos += 1
        if pos >= len(buffer):
            return out, ""
        try:
            obj, end = decoder.raw_decode(buffer, pos)
        except json.JSONDecodeError:
            return out, buffer[pos:]  # incomplete: wait for more bytes
        if isinstance(obj, dict):
            out.append(obj)
        pos = end


def replies_for(message: dict[str, object]) -> tuple[bool, dict[str, object] | None]:
    """(is this a change?, what to send back) for one message from ovsdb-server."""
    method = message.get("method")
    if method == "echo":
        return False, {"id": message.get("id"), "result": message.get("params", []), "error": None}
    if method == "update" or message.get("id") == MONITOR_REQUEST["id"]:
        return True, None
    return False, None  # our echo's reply, or anything else: it proves the server alive, no more


class OvsMonitor:
    """A daemon thread holding one monitor session; reconnects with back-off."""

    def __init__(self, post: Post, db_socket: Path | None = None, probe: float = PROBE_INTERVAL) -> None:
        self._post = post
        self._path = db_socket or default_db_socket()
        self._probe = probe
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="vifscope-ovsdb-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the server: nothing to wake
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv

    def _run(self) -> None:
        backoff = Backoff(initial=0.5, maximum=30.0)
        while not self._stop.is_set():
            error = self._session(backoff)
            if self._stop.is_set():
                return
            # Posted after every failed attempt: the engine reports only up/down changes.
            self._post(SourceDown("ovs", error))
            self._stop.wait(backoff.next_delay())

    def _session(self, backoff: Backoff) -> str:
        """One connection, until it breaks; returns why it ended."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self._probe)
                sock.connect(str(self._path))
                self._sock = sock
                sock.sendall(json.dumps(MONITOR_REQUEST).encode())
                for message in self._messages(sock):
                    changed, reply = replies_for(message)
                    if reply is not None:
                        sock.sendall(json.dumps(reply).encode())
                    if changed:
                        backoff.reset()
                        self._post(OvsChanged())
            return f"ovsdb-server at {self._path} closed the connection"
        except TimeoutError:
            return f"ovsdb-server at {self._path} did not answer an echo within {self._probe:.0f} s (hung?)"
        except OSError as exc:
            return f"cannot reach ovsdb-server at {self._path}: {exc.strerror or exc}"
        finally:
            self._sock = None

    @staticmethod
    def _messages(sock: socket.socket) -> Iterator[dict[str, object]]:
        """Messages until the server closes; a silent server gets one echo, then TimeoutError."""
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode  # chunks split characters
        pending = ""
        while True:
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                sock.sendall(json.dumps({"id": ECHO_ID, "method": "echo", "params": []}).encode())
                chunk = sock.recv(1 << 16)  # raises TimeoutError again if the echo goes unanswered
            if not chunk:
                return
            messages, pending = split_json_stream(pending + decode(chunk))
            yield from messages
