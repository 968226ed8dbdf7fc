"""Watch event handlers as functions: plain state and readers in, effects out (no engine)."""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args

import pytest

from tests.unit.ipjson import bridge, snapshot, tap
from tests.unit.test_watch_state import vif
from vifscope.model import DeclaredVif, LibvirtNetwork
from vifscope.watch.config import ConfigError, WatchConfig, parse_config
from vifscope.watch.effects import (
    Arm,
    Emit,
    LibvirtDown,
    PendingLinks,
    ReadDomain,
    RefreshLinks,
    RefreshOvs,
    Scope,
    SetPending,
    StopWatching,
    Timers,
    UseConfig,
    UseDomain,
    UseNetworks,
)
from vifscope.watch.events import (
    DomainChanged,
    LinkBatch,
    LinkEvent,
    LinksOverrun,
    NetworkChanged,
    OvsChanged,
    Reload,
    SourceDown,
    Stop,
    WatchEvent,
)
from vifscope.watch.handlers import HANDLERS, Context, read_domain
from vifscope.watch.lvevents import LibvirtReadError
from vifscope.watch.state import VifTable

NOW = 500.0
ISO = LibvirtNetwork("iso", "u1", active=True, autostart=False, mode="isolated", bridge="isobr")


WEB1 = vif("web1", "vnet0", mac="52:54:00:00:00:01")
DB1 = vif("db1", "vnet1", "iso", type="network", network="iso", mac="52:54:00:00:00:02")
APP1 = vif("app1", "vnet2", "br1", mac="52:54:00:00:00:03")


def table() -> VifTable:
    links = [bridge("br0"), bridge("br1"), bridge("isobr"), tap("vnet0", master="br0")]
    links += [tap("vnet1", master="isobr"), tap("vnet2", master="br1")]
    return VifTable(snapshot([WEB1, DB1, APP1], links, networks=[ISO]))


def no_read() -> tuple[LibvirtNetwork, ...]:
    raise AssertionError("this handler has no reason to read libvirt")


def no_config() -> WatchConfig:
    raise AssertionError("this handler has no reason to read the config file")


def ctx(
    *,
    timers: Timers | None = None,
    pending: PendingLinks | None = None,
    scope: Scope | None = None,
    networks: Callable[[], tuple[LibvirtNetwork, ...]] = no_read,
    load_config: Callable[[], WatchConfig] = no_config,
) -> Context:
    return Context(
        now=NOW,
        config=WatchConfig(debounce=0.05, resync_interval=60.0),
        timers=timers or Timers(resync=NOW + 30.0),
        pending=pending or PendingLinks(),
        scope=scope or Scope(),
        networks=networks,
        load_config=load_config,
    )


def refresh(effect: object) -> tuple[str, list[str]]:
    """A RefreshLinks's cause and the domains whose vifs it would re-bind (judged on real bindings)."""
    assert isinstance(effect, RefreshLinks), effect
    return effect.cause, sorted(b.vif.domain for b in table().bindings.values() if effect.affects(b.vif, b))


def links(*names: str) -> LinkBatch:
    return LinkBatch(tuple(LinkEvent("new", 3, n) for n in names))


def test_every_event_type_has_a_handler() -> None:
    assert set(HANDLERS) == set(get_args(WatchEvent))


def test_first_link_event_of_a_burst_arms_the_debounce_and_later_ones_only_gather() -> None:
    first = HANDLERS[LinkBatch](ctx(), links("vnet0", ""))
    assert first == [SetPending(PendingLinks(frozenset({"vnet0"}))), Arm("links", NOW + 0.05)]
    armed = Timers(links=NOW + 0.01, resync=NOW + 30.0)
    later = HANDLERS[LinkBatch](ctx(timers=armed, pending=PendingLinks(frozenset({"vnet0"}))), links("br1"))
    assert later == [SetPending(PendingLinks(frozenset({"vnet0", "br1"})))]


@pytest.mark.parametrize("event", [LinksOverrun("ENOBUFS", 3), SourceDown("netlink", "socket closed")])
def test_lost_link_events_mean_every_link_at_once(event: WatchEvent) -> None:
    armed = Timers(links=NOW + 0.04, resync=NOW + 30.0)
    effects = HANDLERS[type(event)](ctx(timers=armed, pending=PendingLinks(frozenset({"vnet0"}))), event)
    said = [e for e in effects if isinstance(e, Emit)]
    assert [e for e in effects if not isinstance(e, Emit)] == [
        SetPending(PendingLinks(frozenset({"vnet0"}), every=True)),
        Arm("links", NOW),
    ]
    if isinstance(event, LinksOverrun):  # an overflow is reported, with how many so far
        assert [(d.doc["event"], d.doc["reason"], d.doc["total"]) for d in said] == [("overrun", "ENOBUFS", 3)]


def test_domain_event_dumps_links_first_then_reads_that_domain() -> None:
    event = DomainChanged("uuid-web1", "web1", "lifecycle:started")
    effects = HANDLERS[DomainChanged](ctx(pending=PendingLinks(frozenset({"vnet2"}))), event)
    assert effects[:2] == [SetPending(PendingLinks()), Arm("links", None)]  # the dump answers the pending events
    # its own vifs, and the pending link's
    assert refresh(effects[2]) == ("libvirt:lifecycle:started", ["app1", "web1"])
    assert effects[3:] == [ReadDomain("uuid-web1", "libvirt:lifecycle:started")]


def test_domain_event_outside_the_scope_is_ignored() -> None:
    scope = Scope(frozenset({"db1"}))
    assert HANDLERS[DomainChanged](ctx(scope=scope), DomainChanged("uuid-web1", "web1", "lifecycle:stopped")) == []
    by_uuid = Scope(frozenset({"uuid-web1"}))
    assert HANDLERS[DomainChanged](ctx(scope=by_uuid), DomainChanged("uuid-web1", "web1", "lifecycle:stopped"))


def test_read_domain_adopts_what_the_reader_returns() -> None:
    def reader(uuid: str) -> tuple[DeclaredVif, ...] | None:
        return {"uuid-web1": (WEB1,)}.get(uuid)

    assert read_domain("uuid-web1", "heal-check", reader) == [UseDomain("uuid-web1", (WEB1,), "heal-check")]
    # Gone (undefined, or transient and stopped): its vifs go with it.
    assert read_domain("uuid-gone", "libvirt:lifecycle:undefined", reader) == [
        UseDomain("uuid-gone", (), "libvirt:lifecycle:undefined")
    ]


@pytest.mark.parametrize(("lost", "expected"), [(True, [LibvirtDown("domain x: reset")]), (False, [])])
def test_a_failed_domain_read_is_an_outage_only_when_the_connection_is_lost(lost: bool, expected: list[object]) -> None:
    def reader(_uuid: str) -> tuple[DeclaredVif, ...] | None:
        raise LibvirtReadError("domain x: reset", lost=lost)

    assert read_domain("uuid-web1", "libvirt:lifecycle:started", reader) == expected


def test_network_event_adopts_the_network_list_then_rebinds_its_vifs() -> None:
    stopped = LibvirtNetwork("iso", "u1", active=False, autostart=False, mode="isolated", bridge="isobr")
    effects = HANDLERS[NetworkChanged](ctx(networks=lambda: (stopped,)), NetworkChanged("iso", "stopped"))
    assert effects[0] == UseNetworks((stopped,))
    assert effects[1:3] == [SetPending(PendingLinks()), Arm("links", None)]
    assert refresh(effects[3]) == ("libvirt:network-stopped:iso", ["db1"])
    assert effects[4:] == []


@pytest.mark.parametrize(("lost", "expected"), [(True, [LibvirtDown("networks: eof")]), (False, [])])
def test_network_list_unreadable(lost: bool, expected: list[object]) -> None:
    def networks() -> tuple[LibvirtNetwork, ...]:
        raise LibvirtReadError("networks: eof", lost=lost)

    assert HANDLERS[NetworkChanged](ctx(networks=networks), NetworkChanged("iso", "started")) == expected


def test_ovs_changes_are_debounced_once() -> None:
    assert HANDLERS[OvsChanged](ctx(), OvsChanged()) == [Arm("ovs", NOW + 0.05)]
    armed = Timers(ovs=NOW + 0.02, resync=NOW + 30.0)
    assert HANDLERS[OvsChanged](ctx(timers=armed), OvsChanged()) == []


def test_lost_sources() -> None:
    down = SourceDown("libvirt", "libvirt connection closed: end of file")
    assert HANDLERS[SourceDown](ctx(), down) == [LibvirtDown("libvirt connection closed: end of file")]
    # The monitor's word is taken: no ovs-vsctl that would wait out its timeout on a hung server.
    gone = HANDLERS[SourceDown](ctx(), SourceDown("ovs", "ovsdb-server went away"))
    assert gone == [RefreshOvs("ovsdb-lost", lost="ovsdb-server went away")]


def test_stop() -> None:
    assert HANDLERS[Stop](ctx(), Stop("SIGTERM")) == [StopWatching(), Emit({"event": "stop", "signal": "SIGTERM"})]


def test_reload_takes_the_new_config_and_brings_the_resync_forward() -> None:
    effects = HANDLERS[Reload](ctx(load_config=lambda: parse_config("[watch]\nresync_interval = 5\n")), Reload())
    [use, arm, emit] = effects
    assert isinstance(use, UseConfig) and use.config.resync_interval == 5.0
    assert arm == Arm("resync", NOW + 5.0)  # sooner than the one already due at NOW + 30
    assert isinstance(emit, Emit) and emit.doc["ok"] and emit.doc["config"]["resync_interval"] == 5.0
    slower = ctx(load_config=lambda: parse_config("[watch]\nresync_interval = 600\n"))
    assert HANDLERS[Reload](slower, Reload())[1] == Arm("resync", NOW + 30.0)  # a longer interval waits its turn


def test_bad_reload_keeps_the_old_config() -> None:
    def broken() -> WatchConfig:
        raise ConfigError("/etc/vifscope/watch.toml: not valid TOML")

    assert HANDLERS[Reload](ctx(load_config=broken), Reload()) == [
        Emit({"event": "reload", "ok": False, "error": "/etc/vifscope/watch.toml: not valid TOML"})
    ]
