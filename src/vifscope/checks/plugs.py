"""Where a tap is plugged, and the exact commands that unplug / plug it.

Pure. A Plug is nowhere, a Linux bridge (``ip link set dev TAP master BR``) or an OVS bridge
(``ovs-vsctl add-port`` with the external_ids libvirt itself writes). Moving a tap is
"leave the old plug, join the new one"; its undo is the same with the plugs swapped. doctor's
fix for a detached or misbound vif and ``--fix``'s step for it are both ``move``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vifscope.checks.commands import ip_link, ovs_set_ids, ovs_vsctl
from vifscope.model import Command, DeclaredVif, HostSnapshot, VifBinding


@dataclass(frozen=True)
class Plug:
    """A tap's attachment. ``kind``: "none", "linux" or "ovs"; OVS plugs carry their external_ids."""

    kind: str
    bridge: str | None = None
    external_ids: tuple[tuple[str, str], ...] = ()


NOWHERE = Plug("none")


def declared_ovs_ids(vif: DeclaredVif) -> tuple[tuple[str, str], ...]:
    """The external_ids libvirt sets when it plugs a vif into OVS (virNetDevOpenvswitchAddPort).

    libvirt writes ``vm-id``; ``vm-uuid`` is written too because some tooling reads that key.
    """
    ids: list[tuple[str, str]] = []
    if vif.interface_id:
        ids.append(("iface-id", vif.interface_id))
    ids.append(("iface-status", "active"))
    if vif.mac:
        ids.append(("attached-mac", vif.mac))
    if vif.domain_uuid:
        ids.extend((("vm-id", vif.domain_uuid), ("vm-uuid", vif.domain_uuid)))
    return tuple(ids)


def current_plug(tap: str, snap: HostSnapshot) -> Plug:
    """Where ``tap`` is now: OVSDB first (an OVS netdev port has no netlink master), then IFLA_MASTER."""
    port = snap.ovs_by_name.get(tap)
    if port is not None:
        known = (("iface-id", port.iface_id), ("attached-mac", port.attached_mac), ("vm-id", port.vm_uuid))
        return Plug("ovs", port.bridge, tuple((k, v) for k, v in known if v))
    link = snap.links_by_name.get(tap)
    if link is not None and link.master and link.master != "ovs-system":
        return Plug("linux", link.master)
    return NOWHERE


def declared_plug(b: VifBinding) -> Plug | None:
    """Where the XML says the tap belongs; None for a macvtap (libvirt creates it on its lower)."""
    if b.expect.attach == "ovs-bridge" and b.expect.bridge:
        return Plug("ovs", b.expect.bridge, declared_ovs_ids(b.vif))
    if b.expect.attach == "linux-bridge" and b.expect.bridge:
        return Plug("linux", b.expect.bridge)
    return None


def _leave_nothing(plug: Plug, tap: str) -> tuple[Command, ...]:
    return ()


def _leave_linux(plug: Plug, tap: str) -> tuple[Command, ...]:
    return (ip_link(tap, "nomaster"),)


def _leave_ovs(plug: Plug, tap: str) -> tuple[Command, ...]:
    return (ovs_vsctl("--if-exists", "del-port", str(plug.bridge), tap),)


def _join_linux(plug: Plug, tap: str) -> tuple[Command, ...]:
    return (ip_link(tap, "master", str(plug.bridge)),)


def _join_ovs(plug: Plug, tap: str) -> tuple[Command, ...]:
    args: tuple[str, ...] = ("--may-exist", "add-port", str(plug.bridge), tap)
    if plug.external_ids:
        args = (*args, "--", *ovs_set_ids(tap, plug.external_ids))
    return (ovs_vsctl(*args),)


# Keyed by Plug.kind: how to take a tap off such a plug, and how to put it on one.
LEAVE: dict[str, Callable[[Plug, str], tuple[Command, ...]]] = {
    "none": _leave_nothing,
    "linux": _leave_linux,
    "ovs": _leave_ovs,
}
JOIN: dict[str, Callable[[Plug, str], tuple[Command, ...]]] = {
    "none": _leave_nothing,
    "linux": _join_linux,
    "ovs": _join_ovs,
}


def move(tap: str, have: Plug, want: Plug) -> tuple[Command, ...]:
    """Steps taking ``tap`` from ``have`` to ``want``.

    Linux bridge to Linux bridge is one ``ip link set master``: the kernel re-masters the port
    in one call, so the tap is never unplugged in between.
    """
    if have.kind == want.kind == "linux" and want.bridge:
        return JOIN["linux"](want, tap)
    return LEAVE[have.kind](have, tap) + JOIN[want.kind](want, tap)
