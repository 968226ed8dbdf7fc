"""A bridge port that is a running domain's declared ``<target dev>`` is a guest port, never an
uplink, whatever its kind: libvirt's LXC driver plugs veths, not taps. A veth nobody declares
still leads out, and a shut-off domain's stale target name hides nothing.

Every consumer is asked: ``status --json`` (observed.uplinks), the topology graph, the bridge
and STP checks, the isolation summary. Snapshots are ``ip -j`` shaped dumps through the real
parser, bound by the real ``bind``.
"""

from __future__ import annotations

from typing import Any

from tests.unit.ipjson import bridge, phys, snapshot, tap, veth
from vifscope.bind.join import bind
from vifscope.checks import CHECKS_BY_ID
from vifscope.checks.base import CheckContext
from vifscope.checks.bridges import no_uplink, stp_off_multi_uplink, uplink_down
from vifscope.checks.isolation import Level, physical
from vifscope.model import DeclaredVif, DomainState, Finding, HostSnapshot
from vifscope.report import documents as report
from vifscope.report.topology import NodeKind, build_topology

BR = "vs-br0"


def vif(domain: str, target: str, state: DomainState = DomainState.RUNNING, index: int = 0) -> DeclaredVif:
    return DeclaredVif(
        domain, f"u-{domain}", state, index, "bridge", f"52:54:00:00:01:{index:02x}", source=BR, target=target
    )


def nic(name: str, *, up: bool = True) -> dict[str, Any]:
    return phys(name, up=up) | {"master": BR, "linkinfo": {"info_slave_kind": "bridge"}}


def host(*, ct_state: DomainState = DomainState.RUNNING, extra: list[dict[str, Any]] | None = None) -> HostSnapshot:
    """vs-br0 (STP off) holding the NIC vs-eth1, a QEMU tap, and the LXC guest vs-ct's veth vs-ct-0."""
    vifs = [vif("vs-vm", "vs-vm-0"), vif("vs-ct", "vs-ct-0", ct_state)]
    links = [bridge(BR), nic("vs-eth1"), tap("vs-vm-0", master=BR), veth("vs-ct-0", "vs-ct-peer", master=BR)]
    return snapshot(vifs, [*links, *(extra or [])])


def uplink_names(snap: HostSnapshot) -> dict[str, list[str]]:
    """observed.uplinks of every bound vif in the ``status --json`` document."""
    doc = report.status_report(snap, bind(snap))
    return {f"{v['domain']}/{v['index']}": v["observed"]["uplinks"] for v in doc["vifs"] if v["status"] == "bound"}


def graph_uplinks(snap: HostSnapshot) -> set[str]:
    return {n.name for n in build_topology(snap, bind(snap)).nodes if n.kind is NodeKind.UPLINK}


def findings(snap: HostSnapshot, check_id: str) -> list[Finding]:
    fn = {
        "bridge.no_uplink": no_uplink,
        "bridge.uplink_down": uplink_down,
        "sec.stp_off_multi_uplink": stp_off_multi_uplink,
    }
    return list(fn[check_id](CheckContext(snap, bind(snap)), CHECKS_BY_ID[check_id]))


def test_a_running_lxc_guests_veth_is_not_an_uplink_in_status_or_graph() -> None:
    snap = host()
    assert uplink_names(snap) == {"vs-ct/0": ["vs-eth1"], "vs-vm/0": ["vs-eth1"]}
    assert graph_uplinks(snap) == {"vs-eth1"}
    assert [p.name for p in CheckContext(snap, bind(snap)).guest_ports(BR)] == ["vs-vm-0", "vs-ct-0"]


def test_a_veth_nobody_declares_still_leads_out() -> None:
    snap = host(extra=[veth("vs-up0", "vs-up1", master=BR)])
    assert uplink_names(snap)["vs-vm/0"] == ["vs-eth1", "vs-up0"]
    assert graph_uplinks(snap) == {"vs-eth1", "vs-up0"}


def test_stp_off_multi_uplink_counts_only_ports_that_lead_out() -> None:
    assert findings(host(), "sec.stp_off_multi_uplink") == []  # one NIC and a guest's veth: no loop possible
    (found,) = findings(host(extra=[veth("vs-up0", "vs-up1", master=BR)]), "sec.stp_off_multi_uplink")
    assert found.evidence_dict()["uplinks"] == "vs-eth1, vs-up0"


def test_a_guest_veth_down_is_not_an_uplink_down_and_is_no_way_out() -> None:
    down_ct = [veth("vs-ct-0", "vs-ct-peer", master=BR, up=False)]
    snap = snapshot(
        [vif("vs-vm", "vs-vm-0"), vif("vs-ct", "vs-ct-0")], [bridge(BR), tap("vs-vm-0", master=BR), *down_ct]
    )
    assert findings(snap, "bridge.uplink_down") == []
    (found,) = findings(snap, "bridge.no_uplink")  # the tap and the veth are both guests: nothing leads out
    assert found.subject == BR
    ctx = CheckContext(snap, bind(snap))
    vm = next(b for b in ctx.bindings if b.vif.domain == "vs-vm")
    assert physical(ctx, vm)[0] is Level.ISOLATED


def test_a_shut_off_domains_stale_target_hides_no_real_uplink() -> None:
    """vs-ct is shut off; its XML still names vs-ct-0, which now is a real veth leading out."""
    snap = host(ct_state=DomainState.SHUTOFF, extra=[])
    assert uplink_names(snap) == {"vs-vm/0": ["vs-eth1", "vs-ct-0"]}
    assert graph_uplinks(snap) == {"vs-eth1", "vs-ct-0"}
    (found,) = findings(snap, "sec.stp_off_multi_uplink")
    assert found.evidence_dict()["uplinks"] == "vs-eth1, vs-ct-0"


def test_a_paused_domain_still_owns_its_target() -> None:
    """Paused (or being shut down): the process and its ports exist, the port is still the guest's."""
    assert graph_uplinks(host(ct_state=DomainState.PAUSED)) == {"vs-eth1"}


def test_an_unclaimed_tap_is_still_a_guest_port() -> None:
    """A tap no running domain declares (left by a crashed QEMU) is nobody's way out either."""
    snap = host(extra=[tap("vs-orphan", master=BR)])
    assert graph_uplinks(snap) == {"vs-eth1"}
    assert findings(snap, "sec.stp_off_multi_uplink") == []


def shared_bridge_fix(snap: HostSnapshot) -> tuple[str, ...]:
    """The argv of sec.port_not_isolated's bridge-wide finding (guests share BR unisolated)."""
    from vifscope.checks.security import port_not_isolated

    (found,) = [f for f in port_not_isolated(CheckContext(snap, bind(snap)), CHECKS_BY_ID["sec.port_not_isolated"])]
    assert found.fix is not None
    (cmd,) = found.fix.commands
    return cmd.argv


def test_the_bridge_isolation_fix_names_a_guest_veth_and_never_an_uplink() -> None:
    """Taps are found by the loop through sysfs; a guest's veth is not a tap, so it is named."""
    argv = shared_bridge_fix(host(extra=[veth("vs-up0", "vs-up1", master=BR)]))
    assert argv[:2] == ("sh", "-c") and argv[3:] == ("sh", BR, "vs-ct-0")
