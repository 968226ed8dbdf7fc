"""Was a rollback complete? Compare what each promise is about, before apply and after undo.

Pure. A promise says what must hold after apply; its *subject* is the present value of the
thing it is about (a link's master, its admin state, an OVS port's bridge and ids, a network's
state, a vif's libvirt link state, a sysctl). An undone action is restored when every subject
of its promises reads on a fresh look after the rollback as it read on the look taken just
before apply. Why not re-run ``broken``: a promise that held before apply (nothing to change
for it) must hold again, and one that did not must again not, with the same value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vifscope.actions.model import (
    Action,
    LinkMaster,
    LinkUp,
    NetworkActive,
    Observed,
    OvsPortOn,
    Promise,
    SysctlIs,
    VifLinkState,
)


def _master(p: LinkMaster, seen: Observed) -> str:
    link = seen.snapshot.links_by_name.get(p.link)
    if link is None:
        return "absent"
    port = seen.snapshot.ovs_by_name.get(p.link)
    return f"master {link.master or 'none'}, OVS bridge {port.bridge if port else 'none'}"


def _up(p: LinkUp, seen: Observed) -> str:
    link = seen.snapshot.links_by_name.get(p.link)
    return "absent" if link is None else ("up" if link.admin_up else "down")


def _ovs(p: OvsPortOn, seen: Observed) -> str:
    if not seen.snapshot.ovs_available:
        return "OVSDB unreadable"
    port = seen.snapshot.ovs_by_name.get(p.port)
    if port is None:
        return "on no OVS bridge"
    return f"on OVS {port.bridge}, attached-mac {port.attached_mac}, iface-id {port.iface_id}"


def _network(p: NetworkActive, seen: Observed) -> str:
    net = seen.snapshot.networks_by_name.get(p.network)
    return "absent" if net is None else ("active" if net.active else "inactive")


def _link_state(p: VifLinkState, seen: Observed) -> str:
    for vif in seen.snapshot.vifs:
        if vif.domain == p.domain and vif.mac == p.mac:
            return f"link state {vif.link_state}"
    return "absent"


def _sysctl(p: SysctlIs, seen: Observed) -> str:
    now = seen.sysctl(p.key)
    return "unreadable" if now is None else " ".join(now.split())


# Keyed by promise type: how to read the value that promise is about.
SUBJECTS: dict[type, Callable[[Any, Observed], str]] = {
    LinkMaster: _master,
    LinkUp: _up,
    OvsPortOn: _ovs,
    NetworkActive: _network,
    VifLinkState: _link_state,
    SysctlIs: _sysctl,
}


def subject(p: Promise, seen: Observed) -> str:
    return SUBJECTS[type(p)](p, seen)


def differences(action: Action, before: Observed, after: Observed) -> tuple[str, ...]:
    """What of ``action``'s subjects reads differently after its undo than before its apply."""
    out = []
    for p in action.promises:
        was, now = subject(p, before), subject(p, after)
        if was != now:
            out.append(f"{p.text()}: before apply {was}, after rollback {now}")
    return tuple(out)
