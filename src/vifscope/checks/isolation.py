"""Per-vif isolation summary over four layers, weakest link visible at a glance:

- physical: where the vif's frames can leave the host (uplinks, the macvtap NIC, nothing);
- host: what the host enforces on the vif (nwfilter anti-spoofing);
- virtual: which other guests share its L2 segment in the virtual switch (port isolation,
  macvtap mode, OVS peers);
- application: what the guest itself controls (spoofing allowed, trustGuestRxFilters,
  promiscuous listeners).
Pure: derived from the snapshot, the bindings and the host facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from vifscope.checks.base import CheckContext, short
from vifscope.checks.security import baseline_promiscuity, declared_isolated, protections
from vifscope.model import VifBinding


class Level(StrEnum):
    ISOLATED = "isolated"
    PARTIAL = "partial"
    SHARED = "shared"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Layer:
    name: str
    level: Level
    detail: str


@dataclass(frozen=True)
class IsolationSummary:
    domain: str
    index: int
    mac: str | None
    target: str | None
    layers: tuple[Layer, ...]


def _linux_physical(ctx: CheckContext, b: VifBinding) -> tuple[Level, str]:
    br = b.expect.bridge or ""
    uplinks = [u.name for u in ctx.uplinks(br)]
    if uplinks:
        return Level.SHARED, f"bridge {br} uplinks {', '.join(uplinks)}"
    net = b.expect.network
    if net is not None and net.mode in ("nat", "route", "open"):
        return Level.PARTIAL, f"routed by the host ({net.mode} network {net.name})"
    return Level.ISOLATED, f"no uplink on {br}: host-only"


def _ovs_peers(ctx: CheckContext, b: VifBinding, *, guests: bool) -> list[str]:
    """Other ports of the vif's OVS bridge: guest vifs, or else uplinks (internal ports excluded)."""
    ports = ctx.ovs_ports_by_bridge.get(b.expect.bridge or "", ())
    guest = ctx.snap.is_guest_port
    return [p.name for p in ports if p.name != b.vif.target and p.type != "internal" and guest(p.name) == guests]


def physical(ctx: CheckContext, b: VifBinding) -> tuple[Level, str]:
    if b.expect.attach == "linux-bridge":
        return _linux_physical(ctx, b)
    if b.expect.attach == "macvtap" and b.link is not None:
        return Level.SHARED, f"NIC {b.link.lower} (macvtap {b.link.macvtap_mode})"
    if b.expect.attach == "ovs-bridge":
        peers = _ovs_peers(ctx, b, guests=False)
        if peers:
            return Level.SHARED, f"OVS {b.expect.bridge} ports {short(peers)}"
        return Level.ISOLATED, f"OVS {b.expect.bridge}: no uplink port"
    return Level.UNKNOWN, b.expect.attach


def host(ctx: CheckContext, b: VifBinding) -> tuple[Level, str]:
    if ctx.snap.facts is None or ctx.facts.nwfilter_bindings is None:
        return Level.UNKNOWN, "nwfilter bindings not read"
    name, found = protections(ctx, b)
    if name is None:
        return Level.SHARED, "no nwfilter"
    level = Level.ISOLATED if {"no-mac-spoofing", "no-ip-spoofing"} <= set(found) else Level.PARTIAL
    return level, f"nwfilter {name} ({', '.join(found) or 'no anti-spoofing'})"


def virtual(ctx: CheckContext, b: VifBinding) -> tuple[Level, str]:
    link = b.link
    if link is not None and link.kind == "macvtap":
        mode = link.macvtap_mode or "?"
        level = {"private": Level.ISOLATED, "vepa": Level.PARTIAL, "passthru": Level.ISOLATED}.get(mode, Level.SHARED)
        return level, f"macvtap mode {mode}"
    if b.expect.attach == "ovs-bridge":
        ovs_peers = _ovs_peers(ctx, b, guests=True)
        if ovs_peers:
            return Level.SHARED, f"{len(ovs_peers)} other OVS port(s), VLAN tags not read"
        return Level.ISOLATED, "alone on the OVS bridge"
    if link is None or b.expect.attach != "linux-bridge":
        return Level.UNKNOWN, "not on a Linux bridge"
    if link.isolated:
        return Level.ISOLATED, "bridge port isolated"
    count, peers = ctx.peers(b.expect.bridge or "", link.name)
    if not count:
        return Level.ISOLATED, "no other guest on the bridge"
    declared = " (declared isolated!)" if ctx.snap.facts is not None and declared_isolated(ctx, b) else ""
    return Level.SHARED, f"L2 with {peers}{declared}"


def application(ctx: CheckContext, b: VifBinding) -> tuple[Level, str]:
    notes = []
    extras = ctx.facts.extras_by_vif.get((b.vif.domain, b.vif.index))
    if extras is not None and extras.trust_guest_rx_filters:
        notes.append("guest controls RX filters")
    if b.link is not None and (b.link.promiscuity or 0) > baseline_promiscuity(ctx, b):
        notes.append("extra promiscuous listener")
    if ctx.facts.nwfilter_bindings is not None and "no-mac-spoofing" not in protections(ctx, b)[1]:
        notes.append("guest may spoof MAC/IP")
    return (Level.SHARED, "; ".join(notes)) if notes else (Level.ISOLATED, "guest cannot change its identity")


LAYERS: tuple[tuple[str, Callable[[CheckContext, VifBinding], tuple[Level, str]]], ...] = (
    ("physical", physical),
    ("host", host),
    ("virtual", virtual),
    ("application", application),
)


def summarize(ctx: CheckContext) -> tuple[IsolationSummary, ...]:
    """One summary per running vif that vifscope could resolve."""
    out = []
    for b in ctx.running:
        if b.expect.attach == "unverifiable":
            continue
        layers = tuple(Layer(name, *fn(ctx, b)) for name, fn in LAYERS)
        out.append(IsolationSummary(b.vif.domain, b.vif.index, b.vif.mac, b.vif.target, layers))
    return tuple(out)
