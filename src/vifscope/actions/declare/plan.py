"""``vifscope apply --plan``: what a file declares against what the host holds → the exact
changes, in the order they run. Pure.

Order: removals first (networks, then bridges: what uses a bridge goes before it), then
bridges, then networks (a bridge-mode network needs its host bridge). Within a kind, the
file's order. Only objects the file names appear; only fields it sets are compared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from vifscope.actions.declare.change import Change, DeclPlan, Step
from vifscope.actions.declare.guestplan import plan_qos_of, plan_vifs
from vifscope.actions.declare.netxml import NetworkXmlUnsupported, canonical, render, same_ipv4, spec_of
from vifscope.actions.declare.vifqos import QosRefused
from vifscope.actions.declare.vifs import VifRefused
from vifscope.actions.model import WriteFile
from vifscope.model import Command
from vifscope.model.desired import (
    BridgeKind,
    BridgeSpec,
    BridgeState,
    Desired,
    HostState,
    NetMode,
    NetworkSpec,
)

DEFAULT_XML_DIR = "/run/vifscope/apply"


class Refuse(Exception):
    """An object the plan cannot converge safely."""


def _cmd(*argv: str) -> Command:
    return Command(tuple(argv))


def _up(spec: BridgeSpec, cur: BridgeState | None) -> list[Step]:
    if spec.up and (cur is None or not cur.up):
        return [_cmd("ip", "link", "set", "dev", spec.name, "up")]
    if not spec.up and cur is not None and cur.up:
        return [_cmd("ip", "link", "set", "dev", spec.name, "down")]
    return []


def _linux_uplink(spec: BridgeSpec, link: str, state: HostState) -> list[Step]:
    free = [_cmd("ovs-vsctl", "del-port", link)] if state.on_ovs(link) else []
    return [*free, _cmd("ip", "link", "set", "dev", link, "master", spec.name)]


def _ovs_uplink(spec: BridgeSpec, link: str, state: HostState) -> list[Step]:
    if state.on_ovs(link):
        free = [_cmd("ovs-vsctl", "del-port", link)]
    elif state.master_of(link):
        free = [_cmd("ip", "link", "set", "dev", link, "nomaster")]
    else:
        free = []
    return [*free, _cmd("ovs-vsctl", "add-port", spec.name, link)]


def _create(spec: BridgeSpec) -> list[Step]:
    if spec.kind is BridgeKind.LINUX:
        stp = ("stp_state", "1" if spec.stp else "0") if spec.stp is not None else ()
        return [_cmd("ip", "link", "add", "name", spec.name, "type", "bridge", *stp)]
    argv = ["ovs-vsctl", "add-br", spec.name]
    if spec.datapath:
        argv += ["--", "set", "Bridge", spec.name, f"datapath_type={spec.datapath}"]
    if spec.stp is not None:
        argv += ["--", "set", "Bridge", spec.name, f"stp_enable={str(spec.stp).lower()}"]
    return [_cmd(*argv)]


def _settings(spec: BridgeSpec, cur: BridgeState | None) -> tuple[list[str], list[Step]]:
    what: list[str] = []
    steps: list[Step] = []
    if cur is not None and spec.stp is not None and cur.stp != spec.stp:
        what.append(f"stp {_onoff(cur.stp)} → {_onoff(spec.stp)}")
        if spec.kind is BridgeKind.LINUX:
            steps.append(_cmd("ip", "link", "set", "dev", spec.name, "type", "bridge", "stp_state", str(int(spec.stp))))
        else:
            steps.append(_cmd("ovs-vsctl", "set", "Bridge", spec.name, f"stp_enable={str(spec.stp).lower()}"))
    if spec.mtu is not None and (cur is None or cur.mtu != spec.mtu):
        what.append(f"mtu {cur.mtu if cur else '-'} → {spec.mtu}")
        if spec.kind is BridgeKind.LINUX:
            steps.append(_cmd("ip", "link", "set", "dev", spec.name, "mtu", str(spec.mtu)))
        else:
            steps.append(_cmd("ovs-vsctl", "set", "Interface", spec.name, f"mtu_request={spec.mtu}"))
    return what, steps


def _onoff(value: bool) -> str:
    return "on" if value else "off"


def _ports(spec: BridgeSpec, cur: BridgeState | None, state: HostState) -> tuple[list[str], list[Step]]:
    what: list[str] = []
    steps: list[Step] = []
    plug = _linux_uplink if spec.kind is BridgeKind.LINUX else _ovs_uplink
    for link in spec.uplinks:
        if not state.link_exists(link) and not state.on_ovs(link):
            raise Refuse(f"bridge {spec.name}: uplink {link} does not exist on this host")
        if state.master_of(link) != spec.name:
            what.append(f"uplink {link} (now on {state.master_of(link) or 'no bridge'})")
            steps += plug(spec, link, state)
    for port in cur.ports if cur is not None and spec.exact else ():
        if port not in spec.uplinks:
            what.append(f"port {port} leaves")
            if spec.kind is BridgeKind.LINUX:
                steps.append(_cmd("ip", "link", "set", "dev", port, "nomaster"))
            else:
                steps.append(_cmd("ovs-vsctl", "del-port", spec.name, port))
    return what, steps


def plan_bridge(spec: BridgeSpec, state: HostState) -> Change | None:
    cur = state.bridge(spec.name)
    if not spec.present:
        if cur is None:
            return None
        linux = cur.kind is BridgeKind.LINUX
        gone = _cmd("ip", "link", "del", "dev", cur.name) if linux else _cmd("ovs-vsctl", "del-br", cur.name)
        return Change("bridge", spec.name, "remove", (f"remove {cur.kind.value} bridge",), (gone,))
    if spec.kind is BridgeKind.OVS and not state.ovs_available:
        raise Refuse(f"bridge {spec.name}: Open vSwitch is not available on this host")
    if cur is not None and cur.kind is not spec.kind:
        raise Refuse(f"bridge {spec.name} exists as a {cur.kind.value} bridge, the file says {spec.kind.value}")
    steps: list[Step] = _create(spec) if cur is None else []
    what = [f"create {spec.kind.value} bridge"] if cur is None else []
    port_what, port_steps = _ports(spec, cur, state)
    set_what, set_steps = _settings(spec, cur)
    up = _up(spec, cur)
    what += port_what + set_what + (["bring up" if spec.up else "bring down"] if up and cur is not None else [])
    steps += port_steps + set_steps + up
    if not steps:
        return None
    return Change("bridge", spec.name, "create" if cur is None else "change", tuple(what), tuple(steps))


def _definition_diff(spec: NetworkSpec, xml: str) -> list[str]:
    """How ``spec`` differs from the defined network ``xml``, in words (empty: it does not)."""
    if spec.xml is not None:
        return [] if canonical(spec.xml) == canonical(xml) else ["definition as in the checkpoint"]
    try:
        cur = spec_of(xml, active=False, autostart=False)
    except NetworkXmlUnsupported as exc:
        raise Refuse(f"network {spec.name}: {exc}") from exc
    what: list[str] = []
    if spec.mode is not None and cur.mode is not spec.mode:
        what.append(f"mode {_mode_text(cur)} → {spec.mode.value}")
    if spec.bridge is not None and cur.bridge != spec.bridge:
        what.append(f"bridge {cur.bridge or '-'} → {spec.bridge}")
    if (spec.mode or cur.mode or NetMode.ISOLATED).has_own_bridge and spec.ipv4 and not same_ipv4(cur.ipv4, spec.ipv4):
        what.append(f"ipv4 {_ipv4_text(cur)} → {_ipv4_text(spec)}")
    if spec.devices and tuple(spec.devices) != cur.devices:
        what.append(f"devices {','.join(cur.devices) or '-'} → {','.join(spec.devices)}")
    return what


def _mode_text(spec: NetworkSpec) -> str:
    return spec.mode.value if spec.mode else "-"


def _ipv4_text(spec: NetworkSpec) -> str:
    if spec.ipv4 is None:
        return "-"
    dhcp = f" dhcp {spec.ipv4.dhcp[0]}-{spec.ipv4.dhcp[1]}" if spec.ipv4.dhcp else " no dhcp"
    return spec.ipv4.address + dhcp


def _replug(spec: NetworkSpec, xml: str, taps: Sequence[tuple[str, str | None]], restart: bool) -> list[Step]:
    """Running guests' taps back on the network's bridge: libvirt leaves them out after a
    restart (the bridge is deleted and made anew)."""
    try:
        target = spec_of(xml, active=True, autostart=False)
    except NetworkXmlUnsupported:
        return []
    if not (target.mode or NetMode.ISOLATED).has_own_bridge or target.bridge is None or not spec.active:
        return []
    return [
        _cmd("ip", "link", "set", "dev", tap, "master", target.bridge)
        for tap, master in taps
        if restart or master != target.bridge
    ]


def plan_network(
    spec: NetworkSpec, state: HostState, xml_dir: str, gone: frozenset[str] = frozenset()
) -> Change | None:
    """``gone``: MACs of NICs this plan unplugs first (their taps are not re-plugged)."""
    cur = state.network(spec.name)

    def virsh(*argv: str) -> Command:
        return _cmd("virsh", "-c", state.uri, *argv)

    if not spec.present:
        if cur is None:
            return None
        stop = [virsh("net-destroy", spec.name)] if cur.active else []
        return Change("network", spec.name, "remove", ("remove network",), (*stop, virsh("net-undefine", spec.name)))
    what = ["define"] if cur is None else _definition_diff(spec, cur.xml)
    target = render(spec, cur.xml if cur else None) if what else (cur.xml if cur else "")
    path = f"{xml_dir}/{spec.name}.xml"
    steps: list[Step] = [WriteFile(path, target), virsh("net-define", path)] if what else []
    active = cur is not None and cur.active
    restart = bool(what) and active and spec.active
    if restart:
        what.append("restart to take the new definition")
        steps += [virsh("net-destroy", spec.name), virsh("net-start", spec.name)]
    elif spec.active != active:
        what.append("start" if spec.active else "stop")
        steps.append(virsh("net-start" if spec.active else "net-destroy", spec.name))
    if (cur is None and spec.autostart) or (cur is not None and cur.autostart != spec.autostart):
        what.append(f"autostart {_onoff(spec.autostart)}")
        steps.append(virsh("net-autostart", spec.name, *(() if spec.autostart else ("--disable",))))
    if cur is not None:
        unplugged = {tap for tap, mac in cur.tap_macs if mac in gone}
        replug = _replug(spec, target, [t for t in cur.taps if t[0] not in unplugged], restart)
    else:
        replug = []
    if replug:
        what.append(f"re-plug {len(replug)} guest tap(s)")
    steps += replug
    if not steps:
        return None
    return Change("network", spec.name, "create" if cur is None else "change", tuple(what), tuple(steps))


def _one(make: Callable[[], Change | None]) -> Callable[[], list[Change]]:
    return lambda: [c for c in (make(),) if c is not None]


def plan_changes(desired: Desired, state: HostState, xml_dir: str = DEFAULT_XML_DIR) -> DeclPlan:
    """Every change that makes ``state`` what ``desired`` says, in apply order: NICs to
    unplug, networks then bridges to remove, bridges, networks, NICs to plug or move, QoS."""
    changes: list[Change] = []
    refused: list[str] = []
    gone = frozenset(v.mac for d in desired.domains for v in d.interfaces if not v.present)
    order: list[Callable[[], list[Change]]] = [
        *(partial(plan_vifs, d, state, xml_dir, False) for d in desired.domains),
        *(_one(partial(plan_network, n, state, xml_dir)) for n in desired.networks if not n.present),
        *(_one(partial(plan_bridge, b, state)) for b in desired.bridges if not b.present),
        *(_one(partial(plan_bridge, b, state)) for b in desired.bridges if b.present),
        *(_one(partial(plan_network, n, state, xml_dir, gone)) for n in desired.networks if n.present),
        *(partial(plan_vifs, d, state, xml_dir, True) for d in desired.domains),
        *(partial(plan_qos_of, d, state) for d in desired.domains),
    ]
    for make in order:
        try:
            changes += make()
        except (Refuse, VifRefused, QosRefused) as exc:
            if str(exc) not in refused:  # a missing guest is said once, not per pass
                refused.append(str(exc))
    return DeclPlan(state.uri, tuple(changes), tuple(refused))
