"""``vifscope check-xml``'s plug checks: does what ``<source>`` names exist on this host, and
is it what the interface type needs (a bridge of the declared kind, an active network whose
forward mode serves it, a device for macvtap). Pure, over a VifCheck."""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.checks.commands import ip_link, ip_link_add, ovs_vsctl, virsh
from vifscope.checks.xmlbase import VifCheck
from vifscope.model import Evidence, Finding, Fix, LibvirtNetwork, Severity

OVS = "openvswitch"
# Forward modes whose network libvirt builds itself (a Linux bridge): an OVS virtualport on
# the interface cannot be honoured there.
LIBVIRT_BRIDGE_MODES = frozenset({"nat", "route", "open", "isolated"})


def _names(items: list[str], limit: int = 6) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more or "none"


def _bridges(c: VifCheck) -> list[str]:
    snap = c.host.snap
    return sorted({x.name for x in snap.links if x.kind == "bridge"} | set(snap.ovs_bridges))


def _bridge_missing(c: VifCheck, name: str, ovs: bool) -> Finding:
    if ovs:
        fix = Fix((ovs_vsctl("add-br", name),), f"or use an existing bridge in <source>: {_names(_bridges(c))}")
    else:
        create = (ip_link_add(name, "type", "bridge"), ip_link(name, "up"))
        fix = Fix(create, f"or use an existing bridge in <source>: {_names(_bridges(c))}")
    ev: list[tuple[str, Evidence]] = [
        ("bridge", name),
        ("declared_ovs", ovs),
        ("ovsdb_read", c.host.snap.ovs_available),
    ]
    msg = f"bridge {name} does not exist on this host: the domain would not start"
    return c.finding("xml.bridge_missing", Severity.ERROR, msg, ev, fix, name)


def _not_a_bridge(c: VifCheck, name: str, kind: str | None, master: str | None) -> Finding:
    what = kind or "plain device"
    if master:
        note = f"{name} is a port of bridge {master}: use <source bridge='{master}'/>"
    else:
        note = f"use a bridge that enslaves {name}, or <interface type='direct'><source dev='{name}' mode='bridge'/>"
    ev: list[tuple[str, Evidence]] = [("bridge", name), ("link_kind", what), ("link_master", master)]
    msg = f"{name} is a {what}, not a bridge: the domain would not start ('Unable to add bridge {name} port ...')"
    return c.finding("xml.not_a_bridge", Severity.ERROR, msg, ev, Fix(note=note), name)


def bridge_findings(c: VifCheck, name: str, declared_ovs: bool) -> Iterator[Finding]:
    """The named bridge exists, is a bridge, of the kind the XML declares, and is up. (The
    quoted errors are libvirt 9.0's on ``virsh start``, checked on this lab's hosts.)"""
    snap = c.host.snap
    link = snap.links_by_name.get(name)
    in_ovsdb = name in snap.ovs_bridges
    if link is None and not in_ovsdb:
        if not snap.failed("ovs"):  # else it may be an OVS bridge OVSDB did not list: exit 3 says so
            yield _bridge_missing(c, name, declared_ovs)
        return
    if link is not None and link.kind not in ("bridge", OVS) and not in_ovsdb:
        yield _not_a_bridge(c, name, link.kind, link.master)
        return
    is_linux = link is not None and link.kind == "bridge" and not in_ovsdb
    ev: list[tuple[str, Evidence]] = [("bridge", name), ("declared_ovs", declared_ovs), ("in_ovsdb", in_ovsdb)]
    ev.append(("link_kind", link.kind if link else None))
    if declared_ovs and is_linux:
        msg = f"<virtualport type='openvswitch'/> but {name} is a Linux bridge: the domain would not start"
        msg += f" ('Unable to add port ... to OVS bridge {name}')"
        note = f"delete <virtualport type='openvswitch'/> from interface {c.vif.index}"
        yield c.finding("xml.bridge_kind", Severity.ERROR, msg, ev, Fix(note=note), name)
    elif not declared_ovs and not is_linux:
        msg = f"{name} is an Open vSwitch bridge but the interface has no <virtualport type='openvswitch'/>:"
        msg += f" the domain would not start ('Unable to add bridge {name} port ...')"
        note = f"add <virtualport type='openvswitch'/> to interface {c.vif.index}"
        yield c.finding("xml.bridge_kind", Severity.ERROR, msg, ev, Fix(note=note), name)
    elif link is not None and not link.admin_up:
        msg = f"bridge {name} is down: the guest would have no network"
        yield c.finding("xml.bridge_down", Severity.WARNING, msg, ev, Fix((ip_link(name, "up"),)), name)


def _no_source(c: VifCheck, attr: str) -> Finding:
    msg = f"type='{c.vif.type}' without <source {attr}=>: libvirt refuses the definition"
    note = f"add <source {attr}='...'/> to interface {c.vif.index}"
    return c.finding("xml.source_missing", Severity.ERROR, msg, [], Fix(note=note))


def check_bridge(c: VifCheck) -> Iterator[Finding]:
    if not c.vif.source:
        yield _no_source(c, "bridge")
        return
    yield from bridge_findings(c, c.vif.source, c.vif.virtualport == OVS)


def _network_missing(c: VifCheck, name: str) -> Finding:
    uri = c.uri
    define = (virsh(uri, "net-define", "NET.xml"), virsh(uri, "net-start", name), virsh(uri, "net-autostart", name))
    known = _names(sorted(c.host.snap.networks_by_name))
    fix = Fix(define, f"NET.xml: the definition of network {name}; or use an existing network: {known}")
    msg = f"network {name} is not defined in libvirt: the domain would not start"
    return c.finding("xml.network_missing", Severity.ERROR, msg, [("network", name)], fix, name)


def _network_inactive(c: VifCheck, net: LibvirtNetwork) -> Finding:
    ev: list[tuple[str, Evidence]] = [("network", net.name), ("active", net.active), ("autostart", net.autostart)]
    start = virsh(c.uri, "net-start", net.name)
    if net.autostart:
        msg = f"network {net.name} is inactive (autostart: it starts with libvirtd; 'virsh start' fails until then)"
        return c.finding("xml.network_inactive", Severity.WARNING, msg, ev, Fix((start,)), net.name)
    msg = f"network {net.name} is inactive and not autostarted: the domain would not start"
    fix = Fix((start, virsh(c.uri, "net-autostart", net.name)))
    return c.finding("xml.network_inactive", Severity.ERROR, msg, ev, fix, net.name)


def _mode_problem(c: VifCheck, net: LibvirtNetwork) -> str | None:
    if c.vif.virtualport == OVS and net.mode in LIBVIRT_BRIDGE_MODES:
        return f"<virtualport type='openvswitch'/> on a {net.mode} network (libvirt's own Linux bridge)"
    if net.kind == "macvtap" and not net.forward_devs:
        return f"forward mode {net.mode} with no <forward><interface dev=>: no device to put a macvtap on"
    if net.mode == "hostdev" and c.vif.virtualport == OVS:
        return "<virtualport type='openvswitch'/> on a hostdev network (a VF is not an OVS port)"
    return None


def check_network(c: VifCheck) -> Iterator[Finding]:
    name = c.vif.network or c.vif.source
    snap = c.host.snap
    if not name:
        yield _no_source(c, "network")
        return
    if snap.failed("libvirt") or snap.failed("libvirt-network"):
        return  # the networks could not be read: the source error says so (exit 3)
    net = snap.networks_by_name.get(name)
    if net is None:
        yield _network_missing(c, name)
        return
    if not net.active:
        yield _network_inactive(c, net)
    why = _mode_problem(c, net)
    if why is not None:
        ev: list[tuple[str, Evidence]] = [
            ("network", name),
            ("forward_mode", net.mode),
            ("virtualport", net.virtualport),
        ]
        note = f"use another network for interface {c.vif.index}, or change the interface to match ({why})"
        yield c.finding("xml.network_mode", Severity.ERROR, f"network {name}: {why}", ev, Fix(note=note), name)
    elif net.mode == "bridge" and net.bridge:  # the network names a host bridge libvirt does not create
        yield from bridge_findings(c, net.bridge, c.vif.virtualport == OVS or net.virtualport == OVS)


def check_direct(c: VifCheck) -> Iterator[Finding]:
    dev = c.vif.source
    if not dev:
        yield _no_source(c, "dev")
        return
    if dev in c.host.snap.links_by_name:
        return
    candidates = sorted(x.name for x in c.host.snap.links if x.kind is None and x.name != "lo")
    ev: list[tuple[str, Evidence]] = [("dev", dev), ("mode", c.vif.source_mode)]
    note = f"use an existing device in <source dev=>: {_names(candidates)}"
    msg = f"device {dev} does not exist: libvirt cannot put a macvtap on it"
    yield c.finding("xml.direct_dev_missing", Severity.ERROR, msg, ev, Fix(note=note), dev)


PLUG_CHECKS = {"bridge": check_bridge, "network": check_network, "direct": check_direct}


def check_plug(c: VifCheck) -> Iterator[Finding]:
    """The plug check of the interface's type (types plugged into nothing named have none)."""
    fn = PLUG_CHECKS.get(c.vif.type)
    if fn is not None:
        yield from fn(c)
