"""Backend checks: vhost-user sockets and SR-IOV VFs (the vifs without a kernel link). They read
the problems bind/backends.py found and add evidence and the fix."""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.checks.base import Check, CheckContext, Explain
from vifscope.checks.commands import virsh
from vifscope.model import Command, Finding, Fix, Problem, Severity, VifBinding

_P = Problem
SOCKET_PROBLEMS = frozenset({
    _P.SOCKET_MISSING, _P.NOT_A_SOCKET, _P.SOCKET_UNHELD, _P.SOCKET_NOT_QEMU, _P.SOCKET_NOT_CONNECTED,
    _P.OVS_VHOST_PATH_MISMATCH,
})  # fmt: skip
VF_PROBLEMS = frozenset({_P.VF_MISSING, _P.VF_MAC_MISMATCH, _P.VF_VLAN_MISMATCH, _P.VF_LINK_DISABLED})


def _with(ctx: CheckContext, wanted: frozenset[Problem]) -> Iterator[VifBinding]:
    return (b for b in ctx.running if wanted & set(b.problems))


def _socket_fix(b: VifBinding, uri: str) -> Fix:
    if b.expect.mode == "server":
        return Fix((virsh(uri, "destroy", b.vif.domain), virsh(uri, "start", b.vif.domain)), "QEMU creates and holds "
                   "a server-mode socket: restarting the domain recreates it (then the switch reconnects)")  # fmt: skip
    return Fix(note="mode='client': the switch must listen on the path (OVS-DPDK: a dpdkvhostuser port named "
               "after the socket; others: see the switch's configuration), then QEMU reconnects")  # fmt: skip


def vhostuser_socket(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, SOCKET_PROBLEMS):
        sock = b.socket
        ev: list[tuple[str, object]] = [("path", b.expect.socket), ("mode", b.expect.mode)]
        if sock is not None:
            ev += [("exists", sock.exists), ("is_socket", sock.is_socket), ("listening", sock.listening)]
            ev += [
                ("connections", sock.connections),
                ("holders", ", ".join(f"{h.comm}[{h.pid}]" for h in sock.holders)),
            ]
        ev += [("ovs_port", b.ovs.name if b.ovs else None), ("problems", " ".join(p.value for p in b.problems))]
        yield c.on_vif(b, f"vhost-user: {b.detail}", ev, _socket_fix(b, ctx.snap.uri), subject=b.expect.socket)


def _vf_fix(b: VifBinding, uri: str) -> Fix:
    actual = (b.actual_bridge or "").split(" vf ")
    if len(actual) == 2 and b.vif.mac:
        pf, index = actual
        args = ["ip", "link", "set", "dev", pf, "vf", index, "mac", b.vif.mac, "vlan", str(b.expect.vlan or 0)]
        return Fix((Command(tuple(args)),), "what libvirt sets when it hands the VF over (re-plugging does it too)")
    return Fix(
        (virsh(uri, "destroy", b.vif.domain), virsh(uri, "start", b.vif.domain)),
        "the VF is gone or not a VF: check the PF's sriov_numvfs and the XML's PCI address first",
    )


def hostdev_vf(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, VF_PROBLEMS):
        ev: list[tuple[str, object]] = [
            ("pci", b.expect.pci or ", ".join(b.expect.pci_pool) or None),
            ("vf", b.actual_bridge),
        ]
        ev += [("mac", b.vif.mac), ("vlan", b.expect.vlan), ("problems", " ".join(p.value for p in b.problems))]
        yield c.on_vif(b, f"SR-IOV VF: {b.detail}", ev, _vf_fix(b, ctx.snap.uri), subject=b.actual_bridge)


CHECKS: tuple[Check, ...] = (
    Check(
        "vhostuser.socket",
        "binding",
        Severity.ERROR,
        "vhost-user socket not connected",
        vhostuser_socket,
        Explain(
            "A running domain's vhost-user socket is missing, not a socket, held by nobody (stale) or by another "
            "process than the domain's QEMU (mode='server'), nobody connected, or the OVS port serving it points "
            "elsewhere.",
            "The guest's NIC has no datapath: a userspace switch (OVS-DPDK, VPP, ...) and QEMU must both hold the "
            "socket.",
            "mode='server': restart the domain (QEMU recreates the socket); mode='client': make the switch listen on "
            "the path; OVS: fix the port's type / options:vhost-server-path.",
            "A switch being restarted: the socket comes back within seconds (QEMU reconnects with reconnect='N').",
        ),
    ),
    Check(
        "hostdev.vf",
        "binding",
        Severity.ERROR,
        "SR-IOV VF not as declared",
        hostdev_vf,
        Explain(
            "The VF a hostdev vif names does not exist (or is no VF), or its PF reports another MAC or VLAN than "
            "the XML's <mac>/<vlan>, or its link-state is disable.",
            "The guest's traffic leaves with another MAC / on another VLAN than declared, or not at all.",
            "ip link set PF vf N mac MAC vlan VLAN (what libvirt does at plug time), or re-plug the interface.",
            "A port profile (<virtualport type='802.1Qbh'>) manages the VF: such vifs are not compared.",
        ),
    ),
)
