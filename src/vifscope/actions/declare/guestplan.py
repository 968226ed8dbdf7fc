"""The guests' part of an apply plan: NICs to plug, move or unplug (actions/declare/vifs.py),
then their declared QoS (actions/declare/vifqos.py). Pure."""

from __future__ import annotations

from vifscope.actions.declare.change import Change
from vifscope.actions.declare.vifqos import plan_qos
from vifscope.actions.declare.vifs import guest_of, plan_vif
from vifscope.model.desired import DomainSpec, HostState


def plan_vifs(spec: DomainSpec, state: HostState, xml_dir: str, present: bool) -> list[Change]:
    """The declared NICs of one guest (only those to plug/move, or only those to unplug)."""
    vifs = [v for v in spec.interfaces if v.present == present]
    if not vifs:
        return []
    guest = guest_of(spec, state)
    changes = []
    for vif in vifs:
        what, steps = plan_vif(guest, vif, state.uri, xml_dir)
        if steps:
            op = "remove" if not present else ("create" if what[0].startswith("plug") else "change")
            changes.append(Change("vif", f"{spec.name} {vif.mac}", op, what, steps))
    return changes


def plan_qos_of(spec: DomainSpec, state: HostState) -> list[Change]:
    """The declared ``qos:`` of one guest's NICs (after they are plugged)."""
    vifs = [v for v in spec.interfaces if v.present and v.qos is not None]
    if not vifs:
        return []
    guest = guest_of(spec, state)
    changes = []
    for vif in vifs:
        what, steps = plan_qos(guest, vif, state.uri, state.shaping)
        if steps:
            clear = vif.qos is not None and vif.qos.clear
            live = next((v for v in guest.live if v.mac == vif.mac), None)
            new = live is None or live.qos is None or live.qos.backend is None
            op = "remove" if clear else ("create" if new else "change")
            changes.append(Change("qos", f"{spec.name} {vif.mac}", op, what, steps))
    return changes
