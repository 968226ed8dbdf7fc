"""watch's libvirt connection against a PRIVATE libvirtd (vifscope.lab.private; the host's is
never signalled) that is SIGSTOPped: hung, its socket accepts and nothing answers. Opening a
connection and reading a domain give up after their deadline instead of holding watch's engine."""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vifscope.lab.private import PrivateLibvirtd
from vifscope.sources.libvirt.conn import LibvirtUnavailable
from vifscope.sources.libvirt.eventloop import EventLoop
from vifscope.watch.events import WatchEvent
from vifscope.watch.lvevents import LibvirtReadError, LibvirtWatcher

pytestmark = pytest.mark.integration

NODE = """<node><domain type='test'><name>vs-o-hung</name><uuid>6b1c7d1e-3a0f-4f7e-9a55-0d6f2c1e9b01</uuid>
<memory>65536</memory><os><type>hvm</type></os><devices><interface type='bridge'><mac address='52:54:00:0a:0b:0c'/>
<source bridge='vs-o-hbr'/><target dev='vs-o-htap'/></interface></devices></domain></node>"""
UUID = "6b1c7d1e-3a0f-4f7e-9a55-0d6f2c1e9b01"


@pytest.fixture
def libvirtd(tmp_path: Path) -> Iterator[tuple[PrivateLibvirtd, str]]:
    if os.geteuid() != 0:
        pytest.fail("needs root (a private libvirtd)")
    node = tmp_path / "node.xml"
    node.write_text(NODE)
    with PrivateLibvirtd() as daemon:
        daemon.start()
        yield daemon, daemon.uri(node)


def test_connect_and_reads_give_up_on_a_hung_libvirtd(libvirtd: tuple[PrivateLibvirtd, str]) -> None:
    daemon, uri = libvirtd
    EventLoop.ensure()
    events: queue.SimpleQueue[WatchEvent] = queue.SimpleQueue()
    watcher = LibvirtWatcher(uri, events.put, connect_timeout=1.0)
    watcher.connect()
    assert watcher.domain_vifs(UUID)  # answers while the daemon runs
    leaving = LibvirtWatcher(uri, events.put, connect_timeout=1.0)
    leaving.connect()
    daemon.signal(signal.SIGSTOP)
    try:
        # SIGTERM during the hang: watch's clean close must return (it asks the daemon to
        # deregister; the asking is given up on, the process can exit).
        closing = threading.Thread(target=leaving.close, daemon=True)
        closing.start()
        closing.join(30)
        assert not closing.is_alive(), "close() hung with libvirtd"
        with pytest.raises(LibvirtReadError) as read:
            watcher.domain_vifs(UUID)
        assert read.value.lost and "no answer within" in str(read.value)
        watcher.drop()  # what the engine does next: returns at once (the close runs off-thread)
        fresh = LibvirtWatcher(uri, events.put, connect_timeout=1.0)
        with pytest.raises(LibvirtUnavailable, match="no answer within"):
            fresh.connect()
    finally:
        daemon.signal(signal.SIGCONT)
    again = LibvirtWatcher(uri, events.put, connect_timeout=30.0)
    again.connect()  # answered again
    assert again.domain_vifs(UUID)
    again.close()
