"""The OVSDB monitor against a real, private ovsdb-server (its own database file and socket:
the host's Open vSwitch is never touched), including the server going away and coming back."""

from __future__ import annotations

import queue
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vifscope.watch.events import OvsChanged, SourceDown, WatchEvent
from vifscope.watch.ovsmon import OvsMonitor

pytestmark = pytest.mark.integration

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


class PrivateOvsdb:
    def __init__(self, base: Path) -> None:
        self.db, self.sock = base / "conf.db", base / "db.sock"
        self.ctl = base / "ovsdb.ctl"
        subprocess.run(["ovsdb-tool", "create", str(self.db), str(SCHEMA)], check=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["ovsdb-server", str(self.db), f"--remote=punix:{self.sock}", f"--unixctl={self.ctl}", "--no-chdir"],
            stderr=subprocess.DEVNULL,
        )
        vsctl = ["ovs-vsctl", f"--db=unix:{self.sock}", "--no-wait", "--timeout=5", "init"]
        for _ in range(50):
            if self.sock.exists() and subprocess.run(vsctl, capture_output=True, check=False).returncode == 0:
                return
            subprocess.run(["sleep", "0.1"], check=True)
        raise AssertionError("private ovsdb-server did not come up")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def vsctl(self, *args: str) -> None:
        subprocess.run(["ovs-vsctl", f"--db=unix:{self.sock}", "--no-wait", "--timeout=5", *args], check=True)


@pytest.fixture
def ovsdb(tmp_path: Path) -> Iterator[PrivateOvsdb]:
    if shutil.which("ovsdb-server") is None or not SCHEMA.exists():
        pytest.fail("needs Open vSwitch installed (make setup)")
    server = PrivateOvsdb(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def next_of(events: queue.SimpleQueue[WatchEvent], kind: type, timeout: float = 10.0) -> WatchEvent:
    while True:
        ev = events.get(timeout=timeout)
        if isinstance(ev, kind):
            return ev


def drain(events: queue.SimpleQueue[WatchEvent]) -> None:
    while True:
        try:
            events.get(timeout=0.3)
        except queue.Empty:
            return


def test_changes_loss_and_reconnect(ovsdb: PrivateOvsdb) -> None:
    events: queue.SimpleQueue[WatchEvent] = queue.SimpleQueue()
    mon = OvsMonitor(events.put, db_socket=ovsdb.sock)
    mon.start()
    try:
        next_of(events, OvsChanged)  # the monitor reply: connected
        drain(events)
        ovsdb.vsctl("add-br", "vs-w-ovsmon0")  # a bridge, its port and internal interface rows
        next_of(events, OvsChanged)
        drain(events)
        ovsdb.vsctl("set", "Interface", "vs-w-ovsmon0", "external_ids:attached-mac=52:54:00:00:00:01")
        next_of(events, OvsChanged)
        ovsdb.stop()
        down = next_of(events, SourceDown)
        assert isinstance(down, SourceDown) and down.source == "ovs"
        assert str(ovsdb.sock) in down.error
        ovsdb.start()
        next_of(events, OvsChanged, timeout=40)  # back: reconnected with back-off
    finally:
        mon.stop()


def test_a_hung_server_is_found_by_the_echo_probe(ovsdb: PrivateOvsdb) -> None:
    """SIGSTOP: the socket stays open and accepts, nothing answers. The monitor's echo goes
    unanswered and it reports the source down (not only at the engine's next resync)."""
    events: queue.SimpleQueue[WatchEvent] = queue.SimpleQueue()
    mon = OvsMonitor(events.put, db_socket=ovsdb.sock, probe=0.5)
    mon.start()
    assert ovsdb.proc is not None
    try:
        next_of(events, OvsChanged)
        drain(events)
        ovsdb.proc.send_signal(signal.SIGSTOP)
        try:
            down = next_of(events, SourceDown, timeout=30)
            assert isinstance(down, SourceDown) and "did not answer an echo" in down.error
        finally:
            ovsdb.proc.send_signal(signal.SIGCONT)
        next_of(events, OvsChanged, timeout=40)  # answered again: reconnected
    finally:
        mon.stop()
