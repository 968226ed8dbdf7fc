"""DeclaredCache on libvirt's test driver (test:///default, in-process, real libvirt events).

What must hold: the cache answers exactly what a fresh read_libvirt answers, and re-reads a
domain's XML only when something says it may have changed.
"""

from __future__ import annotations

import time

import libvirt
import pytest

from vifscope.sources.libvirt.conn import read_libvirt
from vifscope.sources.libvirt.declared import DeclaredCache

URI = "test:///default"
EXTRA = (
    "<domain type='test'><name>vs-dc{n}</name><uuid>5eed0000-0000-4000-8000-0000000000{n:02x}</uuid>"
    "<memory>65536</memory><os><type>hvm</type></os><devices>"
    "<interface type='bridge'><mac address='52:54:00:dc:00:{n:02x}'/><source bridge='vs-dcbr'/>"
    "<target dev='vs-dct{n}'/></interface></devices></domain>"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def conn():  # type: ignore[no-untyped-def]
    """A read-write handle on the process's shared test:///default (kept open: it holds the state)."""
    c = libvirt.open(URI)
    for n in range(3):
        c.createXML(EXTRA.format(n=n), 0)
    yield c
    for dom in c.listAllDomains(0):
        if dom.name().startswith("vs-dc"):
            dom.destroy()
    c.close()


def read_until_refetch(cache: DeclaredCache, seconds: float) -> int:
    """Reads until one re-fetches something (events arrive on another thread) or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        cache.read()
        if cache.last_refetched or time.monotonic() > deadline:
            return cache.last_refetched
        time.sleep(0.02)


def test_first_read_equals_a_fresh_read_and_the_second_fetches_nothing(conn) -> None:  # type: ignore[no-untyped-def]
    cache = DeclaredCache(URI, events=False)
    first = cache.read()
    assert cache.last_refetched == 4  # the stock "test" domain + 3
    fresh = read_libvirt(URI)
    assert (first.vifs, first.networks, first.hostname) == (fresh.vifs, fresh.networks, fresh.hostname)
    assert cache.read().vifs == fresh.vifs and cache.last_refetched == 0


def test_state_change_new_and_removed_domains(conn) -> None:  # type: ignore[no-untyped-def]
    cache = DeclaredCache(URI, events=False)
    cache.read()
    conn.lookupByName("vs-dc1").suspend()
    conn.lookupByName("vs-dc2").destroy()
    conn.createXML(EXTRA.format(n=7), 0)
    state = cache.read()
    assert cache.last_refetched == 2  # vs-dc1 (paused) and vs-dc7 (new)
    by_domain = {v.domain: v for v in state.vifs}
    assert by_domain["vs-dc1"].domain_state.value == "paused"
    assert "vs-dc2" not in by_domain and by_domain["vs-dc7"].target == "vs-dct7"
    assert state.vifs == read_libvirt(URI).vifs


def test_an_event_alone_triggers_a_reread(conn) -> None:  # type: ignore[no-untyped-def]
    """Suspend + resume between two reads: name, state and id are as before; only libvirt's
    lifecycle events can tell the cache to look again."""
    with_events, without = DeclaredCache(URI), DeclaredCache(URI, events=False)
    with_events.read()
    without.read()
    dom = conn.lookupByName("vs-dc0")
    dom.suspend()
    dom.resume()
    assert read_until_refetch(with_events, 5.0) == 1
    assert read_until_refetch(without, 0.3) == 0


def test_entries_expire_spread_between_half_and_all_of_max_age(conn) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    cache = DeclaredCache(URI, max_age=100.0, events=False, clock=clock)
    cache.read()
    clock.now += 49.9
    cache.read()
    assert cache.last_refetched == 0
    clock.now += 50.2  # past max_age for every domain
    cache.read()
    assert cache.last_refetched == 4
    refetched = []
    for _ in range(21):  # the next round of expiries lands on different reads, not one
        clock.now += 5.0
        cache.read()
        refetched.append(cache.last_refetched)
    assert sum(refetched) == 4 and max(refetched) < 4
