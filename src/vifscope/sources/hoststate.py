"""Read what ``vifscope apply`` / ``export`` plan against: the host's bridges (Linux and
OVS), every libvirt network's persistent and live XML, and which links are whose ports.

One snapshot (links, OVSDB ports, vifs) plus what it lacks: network XMLs (``--inactive``
and live), OVS bridges' stp_enable / datapath_type. Raises StateUnavailable when libvirt or
the kernel could not be read: apply must not plan against half a host.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from vifscope.model import DeclaredVif, HostSnapshot
from vifscope.model.desired import BridgeKind, BridgeState, GuestState, HostState, NetworkState, VifKind, VifState
from vifscope.sources.libvirt.conn import LibvirtUnavailable, connect
from vifscope.sources.libvirt.devices import NoSuchDomain, read_domain
from vifscope.sources.snapshot import take_snapshot

# OVSDB is not required: without it OVS bridges are refused (a host without OVS is common)
_REQUIRED = ("libvirt", "netlink")


class StateUnavailable(RuntimeError):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class OvsBridgeRow:
    name: str
    stp: bool
    datapath: str | None


@dataclass(frozen=True)
class NetworkXmls:
    name: str
    xml: str
    active: bool
    autostart: bool


def _persistent_xml(net: Any) -> str:
    """``net-dumpxml --inactive``; drivers without the flag (the test driver) give the one XML."""
    import libvirt

    try:
        return str(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
            raise
        return str(net.XMLDesc(0))


def _read_networks(uri: str) -> tuple[NetworkXmls, ...]:
    import libvirt

    out: list[NetworkXmls] = []
    try:
        with connect(uri) as conn:
            for net in sorted(conn.listAllNetworks(0), key=lambda n: n.name()):
                active = bool(net.isActive())
                persistent = bool(net.isPersistent())
                xml = _persistent_xml(net) if persistent else net.XMLDesc(0)
                out.append(NetworkXmls(str(net.name()), str(xml), active, bool(net.autostart())))
    except libvirt.libvirtError as exc:
        raise StateUnavailable(f"libvirt at {uri}: {str(exc).strip()}", "is libvirtd running?") from exc
    except LibvirtUnavailable as exc:
        raise StateUnavailable(str(exc), exc.hint) from exc
    return tuple(out)


def parse_bridge_rows(stdout: str) -> tuple[OvsBridgeRow, ...]:
    """``ovs-vsctl --format=json --columns=name,stp_enable,datapath_type list Bridge``."""
    table = json.loads(stdout)
    rows = [dict(zip(table["headings"], row, strict=False)) for row in table["data"]]
    return tuple(
        OvsBridgeRow(str(r["name"]), r.get("stp_enable") is True, r.get("datapath_type") or None) for r in rows
    )


def _read_ovs_bridges() -> tuple[OvsBridgeRow, ...]:
    exe = shutil.which("ovs-vsctl")
    if exe is None:
        return ()
    argv = [exe, "--timeout=5", "--format=json", "--columns=name,stp_enable,datapath_type", "list", "Bridge"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=7, check=False)
    except subprocess.TimeoutExpired as exc:
        raise StateUnavailable("ovs-vsctl timed out", "is ovsdb-server running?") from exc
    if proc.returncode != 0:
        raise StateUnavailable(f"ovs-vsctl: {proc.stderr.strip()}", "is ovsdb-server running?")
    try:
        return parse_bridge_rows(proc.stdout)
    except (ValueError, KeyError, TypeError) as exc:
        raise StateUnavailable(f"unexpected ovs-vsctl output: {exc}", "check the Open vSwitch install") from exc


def _guest_taps(snap: HostSnapshot) -> set[str]:
    return {v.target for v in snap.vifs if v.target and v.domain_state.has_taps}


def _bridges(snap: HostSnapshot, ovs: Sequence[OvsBridgeRow]) -> tuple[BridgeState, ...]:
    taps = _guest_taps(snap)
    out: list[BridgeState] = []
    for link in snap.links:
        if link.kind == "bridge":
            ports = tuple(sorted(p.name for p in snap.links if p.master == link.name and p.name not in taps))
            out.append(BridgeState(link.name, BridgeKind.LINUX, link.mtu, bool(link.stp_state), link.admin_up, ports))
    for row in ovs:
        own = snap.links_by_name.get(row.name)
        ports = tuple(
            sorted(p.name for p in snap.ovs_ports if p.bridge == row.name and p.name not in taps and p.name != row.name)
        )
        mtu, up = (own.mtu, own.admin_up) if own else (None, False)
        out.append(BridgeState(row.name, BridgeKind.OVS, mtu, row.stp, up, ports, row.datapath))
    return tuple(sorted(out, key=lambda b: b.name))


def _network_taps(snap: HostSnapshot, name: str) -> tuple[tuple[str, str | None], ...]:
    found = {
        v.target
        for v in snap.vifs
        if v.type == "network" and v.network == name and v.target and v.domain_state.has_taps and v.virtualport is None
    }
    return tuple((t, snap.links_by_name[t].master) for t in sorted(found) if t in snap.links_by_name)


def _network_state(snap: HostSnapshot, net: NetworkXmls) -> NetworkState:
    taps = _network_taps(snap, net.name)
    on_it = {tap for tap, _ in taps}
    macs = tuple((v.target, (v.mac or "").lower()) for v in snap.vifs if v.target in on_it)
    return NetworkState(net.name, net.xml, net.active, net.autostart, taps, macs)


def build_state(snap: HostSnapshot, nets: Sequence[NetworkXmls], ovs: Sequence[OvsBridgeRow]) -> HostState:
    """Pure: the HostState of a snapshot plus the network XMLs and OVS bridge rows."""
    networks = tuple(_network_state(snap, n) for n in nets)
    return HostState(
        uri=snap.uri,
        bridges=_bridges(snap, ovs),
        networks=networks,
        link_masters=tuple((link.name, link.master) for link in snap.links),
        ovs_members=tuple((p.name, p.bridge) for p in snap.ovs_ports),
        ovs_available=snap.ovs_available,
    )


def isolated_macs(xml: str | None) -> frozenset[str]:
    """MACs of a domain XML's interfaces with ``<port isolated='yes'/>`` (not in DeclaredVif)."""
    out: set[str] = set()
    for iface in ET.fromstring(xml).findall("devices/interface") if xml else ():
        mac, port = iface.find("mac"), iface.find("port")
        if mac is not None and port is not None and port.get("isolated") == "yes":
            out.add(mac.get("address", "").lower())
    return frozenset(out)


def _domain_xmls(uri: str, name: str, running: bool, persistent: bool) -> tuple[str | None, str | None]:
    """(live, persistent) XML of a domain, for what DomainView does not carry."""
    import libvirt

    try:
        with connect(uri) as conn:
            dom = conn.lookupByName(name)
            live = str(dom.XMLDesc(0)) if running else None
            config = str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) if persistent else None
            return live, config
    except libvirt.libvirtError as exc:
        raise StateUnavailable(f"libvirt at {uri}: {str(exc).strip()}", "is libvirtd running?") from exc


def vif_state(vif: DeclaredVif, isolated: frozenset[str] = frozenset()) -> VifState:
    if vif.type == "bridge" and vif.virtualport == "openvswitch":
        kind: VifKind | None = VifKind.OVS
    else:
        kind = VifKind(vif.type) if vif.type in ("network", "bridge") else None
    source = vif.network if vif.type == "network" else vif.source
    mac = (vif.mac or "").lower()
    return VifState(mac, kind, source, vif.model, None, mac in isolated, vif.filterref)


def _read_guest(uri: str, name: str) -> GuestState | None:
    try:
        view = read_domain(uri, name)
    except NoSuchDomain:
        return None
    except LibvirtUnavailable as exc:
        raise StateUnavailable(str(exc), exc.hint) from exc
    live_xml, config_xml = _domain_xmls(uri, view.name, view.running, view.persistent)
    live = tuple(vif_state(v, isolated_macs(live_xml)) for v in view.live) if view.running else ()
    config = tuple(vif_state(v, isolated_macs(config_xml)) for v in view.config)
    return GuestState(view.name, view.running, view.persistent, live, config)


def guests_in(snap: HostSnapshot) -> tuple[GuestState, ...]:
    """Every guest with NICs, as the snapshot has them (the live XML of running guests, the
    persistent one of others): what ``export`` writes, without one more read per domain."""
    by_name: dict[str, list[DeclaredVif]] = {}
    for vif in snap.vifs:
        by_name.setdefault(vif.domain, []).append(vif)
    out = []
    for name, vifs in sorted(by_name.items()):
        running = vifs[0].domain_state.has_taps
        nics = tuple(vif_state(v) for v in vifs)
        out.append(GuestState(name, running, not running, nics if running else (), () if running else nics))
    return tuple(out)


def read_with_snapshot(
    uri: str, domains: Sequence[str] = (), *, all_guests: bool = False
) -> tuple[HostState, HostSnapshot]:
    """The host as apply sees it now (guests: only ``domains``, or ``all_guests`` from the
    snapshot alone), and the snapshot it came from (for the verdicts). Raises StateUnavailable."""
    snap = take_snapshot(uri)
    for err in snap.errors:
        if err.source in _REQUIRED:
            raise StateUnavailable(err.error, err.hint or "fix that source first")
    state = build_state(snap, _read_networks(uri), _read_ovs_bridges() if snap.ovs_available else ())
    guests = tuple(g for g in (_read_guest(uri, name) for name in domains) if g is not None)
    return replace(state, guests=guests_in(snap) if all_guests else guests), snap


def read_state(uri: str) -> HostState:
    """The host's bridges and networks (no guests). Raises StateUnavailable."""
    return read_with_snapshot(uri)[0]
