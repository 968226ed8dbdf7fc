"""``vifscope export``: the host as an apply file, and the checkpoint read back as a
Desired (what rollback applies). Pure.

Round trip: the export of a host, applied to that host, plans no change. Bridges libvirt
owns (an isolated/nat/route/open network's) are the network's, not exported as bridges;
guest taps are not uplinks.
"""

from __future__ import annotations

from typing import Any

from vifscope.actions.declare.netxml import NetworkXmlUnsupported, spec_of
from vifscope.model.desired import (
    BridgeSpec,
    BridgeState,
    Desired,
    DomainSpec,
    GuestState,
    HostState,
    NetMode,
    NetworkSpec,
    QosSpec,
    QosState,
    VifSpec,
)
from vifscope.model.qos import BandwidthRate


def _network_bridges(state: HostState) -> set[str]:
    owned: set[str] = set()
    for net in state.networks:
        try:
            spec = spec_of(net.xml, active=net.active, autostart=net.autostart)
        except NetworkXmlUnsupported:
            continue
        if (spec.mode or NetMode.ISOLATED).has_own_bridge and spec.bridge:
            owned.add(spec.bridge)
    return owned


def _bridge_doc(b: BridgeState) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": b.name, "kind": b.kind.value, "stp": b.stp}
    if b.mtu is not None:
        doc["mtu"] = b.mtu
    if b.ports:
        doc["uplinks"] = list(b.ports)
    if b.datapath:
        doc["datapath"] = b.datapath
    if not b.up:
        doc["up"] = False
    return doc


def _network_doc(spec: NetworkSpec) -> dict[str, Any]:
    mode = spec.mode or NetMode.ISOLATED
    doc: dict[str, Any] = {"name": spec.name, "mode": mode.value}
    if spec.bridge:
        doc["bridge"] = spec.bridge
    if spec.devices:
        doc["devices"] = list(spec.devices)
    if spec.ipv4 is not None and mode.has_own_bridge:
        doc["ipv4"] = {"address": spec.ipv4.address}
        if spec.ipv4.dhcp:
            doc["ipv4"]["dhcp"] = list(spec.ipv4.dhcp)
    doc["autostart"] = spec.autostart
    if not spec.active:
        doc["active"] = False
    return doc


def export_doc(state: HostState, names: Desired | None = None) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The apply file of ``state`` (only the objects ``names`` names, when given), and the
    networks left out because apply does not manage their mode."""
    bridge_names, network_names = names.names if names is not None else ((), ())
    owned = _network_bridges(state)
    bridges = [
        _bridge_doc(b) for b in state.bridges if (b.name in bridge_names if names is not None else b.name not in owned)
    ]
    networks: list[dict[str, Any]] = []
    skipped: list[str] = []
    for net in state.networks:
        if names is not None and net.name not in network_names:
            continue
        try:
            networks.append(_network_doc(spec_of(net.xml, active=net.active, autostart=net.autostart)))
        except NetworkXmlUnsupported as exc:
            skipped.append(f"network {net.name}: {exc}")
    doc: dict[str, Any] = {}
    if bridges:
        doc["bridges"] = bridges
    if networks:
        doc["networks"] = networks
    if state.guests:
        doc["domains"] = {g.name: {"interfaces": _vifs_doc(g)} for g in state.guests}
    return doc, tuple(skipped)


def _vifs_doc(guest: GuestState) -> list[dict[str, Any]]:
    """The NICs apply manages (network / bridge / OVS) of a guest: live if it runs."""
    out: list[dict[str, Any]] = []
    for v in guest.live if guest.running else guest.config:
        if v.kind is not None and v.source:
            doc: dict[str, Any] = {"mac": v.mac, v.kind.value: v.source, "model": v.model or "virtio"}
            doc.update({"isolated": True} if v.isolated else {})
            doc.update({"nwfilter": v.nwfilter} if v.nwfilter else {})
            doc.update({"qos": _qos_doc(v.qos)} if v.qos is not None and v.qos.backend else {})
            out.append(doc)
    return out


def _rate_doc(rate: BandwidthRate) -> int | dict[str, int]:
    if rate.peak is None and rate.burst is None:
        return rate.average or 0
    fields = (("average", rate.average), ("peak", rate.peak), ("burst", rate.burst))
    return {name: value for name, value in fields if value is not None}


def _qos_doc(qos: QosState) -> dict[str, Any]:
    """A NIC's declared rates as the file writes them (backend: who declares them)."""
    doc: dict[str, Any] = {}
    for name, rate in (("inbound", qos.inbound), ("outbound", qos.outbound)):
        if rate is not None and rate.shapes:
            doc[name] = _rate_doc(rate)
    return {**doc, "backend": qos.backend} if doc else {}


def restore_target(checkpoint: HostState, desired: Desired) -> Desired:
    """What rollback applies: every object the file names exactly as the checkpoint had it
    (ports and whole network definitions included), or absent if it did not exist."""
    bridges = []
    for spec in desired.bridges:
        b = checkpoint.bridge(spec.name)
        if b is None:
            bridges.append(BridgeSpec(spec.name, spec.kind, present=False))
        else:
            bridges.append(BridgeSpec(b.name, b.kind, True, b.ports, b.stp, b.mtu, b.datapath, b.up, exact=True))
    networks = []
    for nspec in desired.networks:
        n = checkpoint.network(nspec.name)
        if n is None:
            networks.append(NetworkSpec(nspec.name, present=False))
        else:
            networks.append(NetworkSpec(n.name, autostart=n.autostart, active=n.active, xml=n.xml))
    domains = []
    for dspec in desired.domains:
        guest = checkpoint.guest(dspec.name)
        if guest is not None:
            domains.append(DomainSpec(dspec.name, tuple(_vif_as_was(guest, v) for v in dspec.interfaces)))
    return Desired(tuple(bridges), tuple(networks), tuple(domains))


def _vif_as_was(guest: GuestState, spec: VifSpec) -> VifSpec:
    """The NIC as the checkpoint had it; its QoS too when the file manages it (else left alone)."""
    mac = spec.mac
    found = next((v for v in (guest.live if guest.running else guest.config) if v.mac == mac), None)
    if found is None or found.kind is None:
        return VifSpec(mac, present=False)
    qos = _qos_as_was(found.qos) if spec.qos is not None and guest.running else None
    settings = (found.isolated, found.nwfilter or "")
    return VifSpec(mac, found.kind, found.source, found.model or "virtio", True, *settings, qos=qos)


def _qos_as_was(was: QosState | None) -> QosSpec:
    """What the NIC declared (nothing: ``qos: none``)."""
    if was is None or was.backend is None:
        return QosSpec()
    return QosSpec(was.inbound, was.outbound, was.backend)
