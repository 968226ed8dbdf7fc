"""``vifscope lab up|down``: a demo host of real TCG guests on the local machine.

Builds exactly what topology.LabSpec names (bridges, an OVS netdev bridge, an isolated
libvirt network, a macvtap lower, an 'outside' netns, guests) and removes exactly those.
Both directions are idempotent: running ``up`` twice converges to the same lab.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from vifscope.lab.guestxml import guest_domain_xml
from vifscope.lab.host import Log, ensure_libvirtd, ensure_ovs, ovs_running, run
from vifscope.lab.image import GuestImage, build_guest_image
from vifscope.lab.topology import Guest, LabSpec, guest_cmdline, interface_xml, network_xml
from vifscope.model import DomainState
from vifscope.sources.libvirt.domxml import parse_domain_xml

GUEST_CACHE = Path("/var/cache/vifscope/guest")
LAB_STATE = Path("/var/lib/vifscope/lab")
READY_MARK = "VS-GUEST-READY"
URI = "qemu:///system"


@dataclass(frozen=True)
class Inventory:
    """What of the lab exists right now (names only)."""

    domains: frozenset[str]
    running: frozenset[str]
    networks: frozenset[str]
    links: frozenset[str]
    netns: frozenset[str]


def virsh(*args: str, log: Log | None = None, check: bool = True) -> str:
    return run(["virsh", "-q", "-c", URI, *args], log, check=check)


def inventory() -> Inventory:
    return Inventory(
        domains=frozenset(virsh("list", "--all", "--name").split()),
        running=frozenset(virsh("list", "--name").split()),
        networks=frozenset(virsh("net-list", "--all", "--name").split()),
        links=frozenset(line.split()[0].split("@")[0] for line in run(["ip", "-br", "link"]).splitlines() if line),
        netns=frozenset(line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line),
    )


def _veth_to_netns(host_end: str, ns_end: str, netns: str, addr: str, log: Log) -> None:
    """A veth pair whose far end sits, addressed, in the lab's 'outside' namespace."""
    run(["ip", "link", "add", "name", host_end, "type", "veth", "peer", "name", ns_end, "netns", netns], log)
    run(["ip", "-n", netns, "addr", "add", addr, "dev", ns_end], log)
    run(["ip", "-n", netns, "link", "set", "dev", ns_end, "up"], log)
    run(["ip", "link", "set", "dev", host_end, "up"], log)


def _plumb(spec: LabSpec, inv: Inventory, log: Log) -> None:
    """Bridges, veths, the outside netns, the OVS bridge (created only when absent)."""
    if spec.netns not in inv.netns:
        run(["ip", "netns", "add", spec.netns], log)
        run(["ip", "-n", spec.netns, "link", "set", "dev", "lo", "up"], log)
    for br in (spec.bridge, spec.spare_bridge):
        if br not in inv.links:
            run(["ip", "link", "add", "name", br, "type", "bridge", "stp_state", "0", "forward_delay", "0"], log)
        run(["ip", "link", "set", "dev", br, "up"], log)
    if spec.uplink not in inv.links:
        _veth_to_netns(spec.uplink, spec.name("upx"), spec.netns, f"{spec.subnet(1)}.1/24", log)
    run(["ip", "link", "set", "dev", spec.uplink, "master", spec.bridge, "up"], log)
    if spec.macvtap_lower not in inv.links:
        _veth_to_netns(spec.macvtap_lower, spec.name("mvp0"), spec.netns, f"{spec.subnet(4)}.1/24", log)
    run(
        [
            "ovs-vsctl",
            "--may-exist",
            "add-br",
            spec.ovs_bridge,
            "--",
            "set",
            "bridge",
            spec.ovs_bridge,
            "datapath_type=netdev",
        ],
        log,
    )
    run(["ip", "link", "set", "dev", spec.ovs_bridge, "up"], log, check=False)


def _network(spec: LabSpec, inv: Inventory, log: Log) -> None:
    if spec.network not in inv.networks:
        LAB_STATE.mkdir(parents=True, exist_ok=True)
        path = LAB_STATE / f"{spec.network}.xml"
        path.write_text(network_xml(spec))
        virsh("net-define", str(path), log=log)
    if "yes" not in virsh("net-info", spec.network).split("Active:")[1].splitlines()[0]:
        virsh("net-start", spec.network, log=log)


def _define_guest(guest: Guest, image: GuestImage, log: Log) -> None:
    LAB_STATE.mkdir(parents=True, exist_ok=True)
    xml = guest_domain_xml(
        guest.name,
        image,
        [interface_xml(n) for n in guest.nics],
        console_log=LAB_STATE / f"{guest.name}.console",
        cmdline_extra=guest_cmdline(guest),
    )
    path = LAB_STATE / f"{guest.name}.xml"
    path.write_text(xml)
    virsh("define", str(path), log=log)


def guest_targets(name: str) -> tuple[str | None, ...]:
    """Target devs of a running guest's vifs, from its live XML."""
    vifs = parse_domain_xml(virsh("dumpxml", name), DomainState.RUNNING)
    return tuple(v.target for v in vifs)


def break_guest(guest: Guest, log: Log | None = None) -> None:
    """The lab's deliberate fault: the broken guest's tap is detached from its bridge."""
    target = guest_targets(guest.name)[0]
    if target:
        run(["ip", "link", "set", "dev", target, "nomaster"], log)


def wait_ready(names: list[str], timeout: float, log: Log) -> list[str]:
    """Wait until each guest's console shows the ready mark; return those that never did."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending and time.monotonic() < deadline:
        pending = [n for n in pending if READY_MARK not in _console(n)]
        if pending:
            time.sleep(0.2)
    for name in pending:
        log(f"guest {name} not ready after {timeout:.0f} s (console: {LAB_STATE / (name + '.console')})")
    return pending


def _console(name: str) -> str:
    try:
        return (LAB_STATE / f"{name}.console").read_text(errors="replace")
    except OSError:
        return ""


def lab_up(spec: LabSpec, log: Log, *, wait: float = 60.0) -> Inventory:
    """Build (or converge) the lab; returns what exists afterwards."""
    ensure_libvirtd(log)
    ensure_ovs(log)
    image = build_guest_image(GUEST_CACHE, log=log)
    inv = inventory()
    _plumb(spec, inv, log)
    _network(spec, inv, log)
    started: list[str] = []
    for guest in spec.guests():
        if guest.name not in inv.domains:
            _define_guest(guest, image, log)
        if guest.running and guest.name not in inv.running:
            (LAB_STATE / f"{guest.name}.console").unlink(missing_ok=True)
            virsh("start", guest.name, log=log)
            started.append(guest.name)
    for guest in spec.guests():
        if guest.broken:
            break_guest(guest, log)
    if wait and started:
        wait_ready(started, wait, log)
    return inventory()


def lab_down(spec: LabSpec, log: Log) -> None:
    """Remove exactly the lab's objects; absent ones are skipped."""
    inv = inventory()
    for guest in spec.guests():
        if guest.name in inv.running:
            virsh("destroy", guest.name, log=log, check=False)
        if guest.name in inv.domains:
            virsh("undefine", guest.name, log=log, check=False)
    if spec.network in inv.networks:
        virsh("net-destroy", spec.network, log=log, check=False)
        virsh("net-undefine", spec.network, log=log, check=False)
    if ovs_running():
        run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", spec.ovs_bridge], log, check=False)
    for link in spec.links():
        if link in inv.links:
            run(["ip", "link", "del", "dev", link], log, check=False)
    if spec.netns in inv.netns:
        run(["ip", "netns", "del", spec.netns], log, check=False)
