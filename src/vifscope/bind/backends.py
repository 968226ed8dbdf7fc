"""Verifiers for the vifs that have no kernel link: vhost-user sockets and SR-IOV VFs. Pure.

Each reads ``HostSnapshot.backends`` (sources/backends.py) and lists every problem it sees.
What was not read is never passed as bound: no facts at all leaves the vif ``unverified``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from vifscope.model import (
    BackendFacts,
    DeclaredVif,
    Expectation,
    HostSnapshot,
    OvsPort,
    Problem,
    UnixSocketFact,
    VfConfig,
)

# OVS port type that serves QEMU's side of the socket: QEMU server <-> OVS client, and back.
OVS_VHOST_TYPE = {"server": "dpdkvhostuserclient", "client": "dpdkvhostuser"}
VHOST_TYPES = frozenset(OVS_VHOST_TYPE.values())


@dataclass
class Seen:
    """What one backend verifier saw (mutable scratch for join.bind_one)."""

    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    actual: str | None = None
    ovs: OvsPort | None = None
    socket: UnixSocketFact | None = None
    vf: VfConfig | None = None
    bound: str = ""  # the detail when nothing is wrong

    def add(self, problem: Problem, note: str) -> None:
        self.problems.append(problem)
        self.notes.append(note)


def _peer(mode: str | None) -> str:
    return "QEMU" if mode == "server" else "the switch"


def _socket(vif: DeclaredVif, exp: Expectation, facts: BackendFacts, out: Seen) -> None:
    """The socket file exists, is a socket, someone (the right one) listens, someone connected."""
    path = exp.socket or ""
    sock = out.socket = facts.socket_by_path.get(path)
    if sock is None or sock.error:
        out.add(Problem.SOURCE_UNAVAILABLE, f"{path} could not be examined: {sock.error if sock else 'not read'}")
        return
    if not sock.exists:
        out.add(Problem.SOCKET_MISSING, f"no socket at {path}: {_peer(exp.mode)} (mode={exp.mode}) has not created it")
        return
    if not sock.is_socket:
        out.add(Problem.NOT_A_SOCKET, f"{path} exists but is not a UNIX socket")
        return
    if not sock.listening:
        out.add(Problem.SOCKET_UNHELD, f"nothing listens on {path}: stale socket file, {_peer(exp.mode)} is gone")
        return
    qemu = facts.qemu_pid.get(vif.domain)
    pids = [h.pid for h in sock.holders]
    held_by = ", ".join(f"{h.comm or '?'}[{h.pid}]" for h in sock.holders) or "an unknown process"
    if exp.mode == "server" and qemu is not None and pids and qemu not in pids:
        out.add(Problem.SOCKET_NOT_QEMU, f"{path} is held by {held_by}, not by the domain's QEMU [{qemu}]")
    if sock.connections == 0:
        other = "the switch" if exp.mode == "server" else "QEMU"
        why = f"{held_by} has not accepted {sock.pending} waiting connection(s)" if sock.pending else ""
        out.add(
            Problem.SOCKET_NOT_CONNECTED,
            f"{held_by} listens on {path} but " + (why or f"{other} has not connected"),
        )
    why = "" if qemu is not None or exp.mode != "server" else " (QEMU's pid unknown: holder not compared)"
    out.bound = f"vhost-user {path} ({exp.mode}) held by {held_by}, {sock.connections} connected{why}"


def _ovs_port(exp: Expectation, snap: HostSnapshot) -> tuple[OvsPort | None, OvsPort | None]:
    """(the port serving this socket, a port that claims it wrongly). libvirt's own rule
    (virNetDevOpenvswitchGetVhostuserIfname): QEMU server -> the Interface whose
    options:vhost-server-path is the path; QEMU client -> the Interface named the path's basename."""
    path, want = exp.socket or "", OVS_VHOST_TYPE.get(exp.mode or "", "dpdkvhostuser")
    by_path = [p for p in snap.ovs_ports if p.vhost_server_path == path]
    by_name = [p for p in snap.ovs_ports if p.name == posixpath.basename(path) and p.type in VHOST_TYPES]
    for port in (*by_path, *by_name):
        if port.type == want and (want == "dpdkvhostuser" or port.vhost_server_path == path):
            return port, None
    wrong = next(iter((*by_path, *by_name)), None)
    return None, wrong


def _ovs(vif: DeclaredVif, exp: Expectation, snap: HostSnapshot, out: Seen) -> None:
    """OVS is involved when a vhost-user port serves the path, or when the live XML's <target dev>
    names a vhost-user port (libvirt looks the port up in OVSDB at start and writes its name
    there). A port that claims the socket but serves another path or side is a mismatch."""
    if not snap.ovs_available:
        return
    port, wrong = _ovs_port(exp, snap)
    named = snap.ovs_by_name.get(vif.target or "")
    if named is not None and named.type in VHOST_TYPES and named != port:
        wrong = named
    if wrong is not None:
        out.ovs, out.actual = wrong, f"ovs:{wrong.bridge}"
        want = OVS_VHOST_TYPE.get(exp.mode or "", "dpdkvhostuser")
        got = f"type {wrong.type or 'system'}, vhost-server-path {wrong.vhost_server_path or '(none)'}"
        out.add(Problem.OVS_VHOST_PATH_MISMATCH, f"OVS port {wrong.name} ({got}) does not serve {exp.socket} as {want}")
    elif port is not None:
        out.ovs, out.actual = port, f"ovs:{port.bridge}"
        if port.error:
            out.add(Problem.OVS_ERROR, f"OVS interface error: {port.error}")
        out.bound += f", OVS port {port.name} on {port.bridge}"


def verify_vhostuser(vif: DeclaredVif, exp: Expectation, snap: HostSnapshot, facts: BackendFacts, out: Seen) -> None:
    """The socket, then (when OVS is involved) the OVS port on the other end."""
    _socket(vif, exp, facts, out)
    _ovs(vif, exp, snap, out)


def _pool_pfs(exp: Expectation, facts: BackendFacts) -> list[str]:
    pfs = list(exp.lower_pool)
    for address in exp.pci_pool:
        fn = facts.pci_by_address.get(address)
        pfs += list(fn.pf_netdevs[:1]) if fn else []
    return list(dict.fromkeys(pfs))


def _find_vf(vif: DeclaredVif, exp: Expectation, facts: BackendFacts, out: Seen) -> VfConfig | None:
    """The VF of the XML's PCI address, or (hostdev network) the pool's VF carrying the MAC."""
    if exp.pci is None:
        pfs = _pool_pfs(exp, facts)
        unread = [pf for pf in pfs if pf not in facts.pfs_read]
        found = next((v for v in facts.vfs or () if v.pf in pfs and v.mac == vif.mac), None)
        if not pfs:
            out.add(Problem.UNVERIFIED_TYPE, "the hostdev network names no PF or VF address: no VF table to read")
        elif found is None and unread:
            out.add(Problem.SOURCE_UNAVAILABLE, f"VF tables not read for the pool ({', '.join(unread)})")
        elif found is None:
            out.add(Problem.VF_MISSING, f"no VF of {', '.join(pfs)} carries {vif.mac}")
        return found
    fn = facts.pci_by_address.get(exp.pci)
    if fn is None or not fn.exists:
        out.add(Problem.VF_MISSING, f"no PCI device {exp.pci}")
    elif fn.pf_address is None or fn.vf_index is None:
        out.add(Problem.VF_MISSING, f"{exp.pci} is not an SR-IOV VF (no physfn link)")
    elif not fn.pf_netdevs:
        out.add(Problem.SOURCE_UNAVAILABLE, f"PF {fn.pf_address} has no net device: its VF table cannot be read")
    elif fn.pf_netdevs[0] not in facts.pfs_read:
        out.add(Problem.SOURCE_UNAVAILABLE, f"the VF table of {fn.pf_netdevs[0]} could not be read")
    else:
        vf = facts.vf_by_pf_index.get((fn.pf_netdevs[0], fn.vf_index))
        if vf is None:
            out.add(Problem.VF_MISSING, f"{fn.pf_netdevs[0]} lists no vf {fn.vf_index}")
        return vf
    return None


def verify_vf(vif: DeclaredVif, exp: Expectation, snap: HostSnapshot, facts: BackendFacts, out: Seen) -> None:
    """The VF's MAC and VLAN as its PF reports them equal the XML's; its link not forced off."""
    vf = out.vf = _find_vf(vif, exp, facts, out)
    if vf is None:
        return
    out.actual = f"{vf.pf} vf {vf.index}"
    if vif.mac and vf.mac != vif.mac:
        out.add(Problem.VF_MAC_MISMATCH, f"{out.actual} has MAC {vf.mac}; XML says {vif.mac}")
    if exp.vlan is not None and vf.vlan != exp.vlan:
        out.add(Problem.VF_VLAN_MISMATCH, f"{out.actual} has VLAN {vf.vlan or 'none'}; expected {exp.vlan or 'none'}")
    if vf.link_state == "disable":
        out.add(Problem.VF_LINK_DISABLED, f"{out.actual} link-state is disable: the guest sees no link")
    out.bound = f"{out.actual} (MAC {vf.mac}, VLAN {vf.vlan or 'none'})"


BackendVerifier = Callable[[DeclaredVif, Expectation, HostSnapshot, BackendFacts, Seen], None]
BACKEND_VERIFIERS: dict[str, tuple[Callable[[BackendFacts], object], BackendVerifier]] = {
    # attach kind -> (the BackendFacts part it needs, None when unread; verifier)
    "vhostuser": (lambda f: f.sockets, verify_vhostuser),
    "sriov-vf": (lambda f: f.pci, verify_vf),
}


def verify_backend(vif: DeclaredVif, exp: Expectation, snap: HostSnapshot) -> Seen | None:
    """What the backend verifier saw; None when its facts were not read at all."""
    part, verifier = BACKEND_VERIFIERS[exp.attach]
    facts = snap.backends
    if facts is None or part(facts) is None:
        return None
    out = Seen()
    verifier(vif, exp, snap, facts, out)
    return out
