"""Fixes shared by several checks, and the sysctl values ``--fix-host`` sets too (one place, so
doctor and ``--fix`` agree). Pure: every fix is argv (see commands.py), never a formatted string."""

from __future__ import annotations

import shlex

from vifscope.checks.commands import ip_link, sysctl_persist, sysctl_set, virsh
from vifscope.checks.plugs import current_plug, declared_plug, move
from vifscope.model import Chain, Command, Fix, HostSnapshot, VifBinding

IFACE_NOTE = "IFACE.xml: the <interface> element from virsh dumpxml"


def at_least(usual: int, minimum: object) -> int:
    """The usual value, or the check's configured minimum when that is higher."""
    return max(usual, minimum if isinstance(minimum, int) else 0)


def port_range(minimum: object) -> str:
    """The kernel default 32768-60999, widened downwards (never below 1024) to ``minimum`` ports."""
    ports = at_least(60999 - 32768 + 1, minimum)
    return f"{max(1024, 60999 - ports + 1)} 60999"


def sysctl_fix(*pairs: tuple[str, object], note: str = "") -> Fix:
    """Per key: set it now, keep it across reboots (``--fix-host``'s steps: the same sysctl -w, the same file)."""
    return Fix(tuple(c for k, v in pairs for c in (sysctl_set((k, str(v))), sysctl_persist(k, str(v)))), note)


def attach_commands(b: VifBinding, snap: HostSnapshot) -> tuple[Command, ...]:
    """Plug the tap where it is declared, from wherever it is now."""
    want, tap = declared_plug(b), b.vif.target
    if want is None or tap is None:
        return ()
    return move(tap, current_plug(tap, snap), want)


def replug_fix(b: VifBinding, uri: str, note: str = "") -> Fix:
    """Unplug and plug the NIC again, so libvirt recreates its host side."""
    v = b.vif
    mac = ("--mac", v.mac) if v.mac else ()
    detach = virsh(uri, "detach-interface", v.domain, v.type, options=(*mac, "--live"))
    attach = virsh(uri, "attach-device", v.domain, "IFACE.xml", options=("--live",))
    return Fix((detach, attach), "; ".join(x for x in (note, f"{IFACE_NOTE} {shlex.quote(v.domain)}") if x))


def attach_fix(b: VifBinding, snap: HostSnapshot) -> Fix:
    """A detached or misbound tap: the very steps ``doctor --fix`` plans (a macvtap is re-plugged)."""
    steps = attach_commands(b, snap)
    if not steps:
        return replug_fix(b, snap.uri, "re-plug the NIC: libvirt creates a macvtap on its lower device")
    return Fix(steps)


def link_up_fix(dev: str | None) -> Fix | None:
    return Fix((ip_link(dev, "up"),)) if dev else None


def restart_network_fix(uri: str, network: str, note: str) -> Fix:
    """net-destroy may fail on a half-broken network; net-start must run anyway (hence ``;``)."""
    return Fix((virsh(uri, "net-destroy", network), virsh(uri, "net-start", network)), note, Chain.THEN)


def edit_fix(uri: str, domain: str, change: str) -> Fix:
    """An XML change: ``virsh edit DOMAIN``, with the change to make as the note."""
    return Fix((virsh(uri, "edit", domain),), change)
