"""The fix planner on snapshots built by the real parsers (golden cases, ipjson link dumps).

What is asserted is the plan: exact commands, their undo, the promises, the order, and the
faults left alone with a reason. Nothing here touches the host.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.golden.test_golden import CASES_DIR, load_case
from tests.unit import ipjson
from vifscope.actions import ActionKind, Plan, plan_fixes
from vifscope.actions.model import LinkMaster, LinkUp, NetworkActive, OvsPortOn, SysctlIs, VifLinkState
from vifscope.actions.planner import LEFT_ALONE, NOT_FAULTS, VIF_FIXES
from vifscope.bind.join import bind
from vifscope.model import DeclaredVif, DomainState, Finding, HostSnapshot, Problem, Severity


def case(name: str) -> HostSnapshot:
    return load_case(CASES_DIR / name).snap


def plan_for(name: str, **kw: bool) -> Plan:
    snap = case(name)
    return plan_fixes(snap, bind(snap), **kw)


def summary(plan: Plan) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    return [(a.kind.value, a.target, a.commands, a.undo_commands) for a in plan.actions]


def test_detached_tap_is_replugged_into_its_bridge() -> None:
    plan = plan_for("tap-detached")
    assert summary(plan) == [
        ("attach", "vs-web-0", ("ip link set dev vs-web-0 master vs-br0",), ("ip link set dev vs-web-0 nomaster",))
    ]
    (action,) = plan.actions
    assert action.promises == (LinkMaster("vs-web-0", "vs-br0"),)
    assert (action.domain, action.mac, action.reason) == ("vs-web", "52:54:00:10:00:01", "detached")
    assert plan.skipped == ()


def test_misbound_tap_moves_in_one_command_and_undo_moves_it_back() -> None:
    assert summary(plan_for("tap-misbound")) == [
        ("attach", "vs-web-0", ("ip link set dev vs-web-0 master vs-br0",), ("ip link set dev vs-web-0 master vs-br1",))
    ]


OVS_IDS = (
    "external_ids:iface-id=c0ffee00-0000-4000-8000-000000000001 external_ids:iface-status=active "
    "external_ids:attached-mac=52:54:00:aa:00:01 external_ids:vm-id=6f1c0000-0000-4000-8000-000000000011 "
    "external_ids:vm-uuid=6f1c0000-0000-4000-8000-000000000011"
)


def test_removed_ovs_port_is_readded_with_the_external_ids_libvirt_writes() -> None:
    plan = plan_for("ovs-removed")
    assert summary(plan) == [
        (
            "attach",
            "vs-o-0",
            (f"ovs-vsctl --timeout=10 --may-exist add-port vs-ovs0 vs-o-0 -- set Interface vs-o-0 {OVS_IDS}",),
            ("ovs-vsctl --timeout=10 --if-exists del-port vs-ovs0 vs-o-0",),
        )
    ]
    assert plan.actions[0].promises == (
        OvsPortOn("vs-o-0", "vs-ovs0", "52:54:00:aa:00:01", "c0ffee00-0000-4000-8000-000000000001"),
    )


def test_port_on_the_wrong_ovs_bridge_moves_and_undo_restores_its_old_ids() -> None:
    (action,) = plan_for("ovs-wrong-bridge").actions
    assert action.commands == (
        "ovs-vsctl --timeout=10 --if-exists del-port vs-ovs1 vs-o-0",
        f"ovs-vsctl --timeout=10 --may-exist add-port vs-ovs0 vs-o-0 -- set Interface vs-o-0 {OVS_IDS}",
    )
    assert action.undo_commands[0] == "ovs-vsctl --timeout=10 --if-exists del-port vs-ovs0 vs-o-0"
    assert action.undo_commands[1].startswith("ovs-vsctl --timeout=10 --may-exist add-port vs-ovs1 vs-o-0 -- set")
    assert "external_ids:iface-id=c0ffee00-0000-4000-8000-000000000001" in action.undo_commands[1]


def test_attached_mac_mismatch_rewrites_only_that_key() -> None:
    assert summary(plan_for("ovs-attached-mac-mismatch")) == [
        (
            "ovs-external-ids",
            "vs-o-0",
            ("ovs-vsctl --timeout=10 set Interface vs-o-0 external_ids:attached-mac=52:54:00:aa:00:01",),
            ("ovs-vsctl --timeout=10 set Interface vs-o-0 external_ids:attached-mac=52:54:00:aa:00:99",),
        )
    ]


def test_inactive_network_is_started_first_then_its_tap_replugged() -> None:
    plan = plan_for("network-inactive")
    assert summary(plan) == [
        (
            "network-start",
            "vs-net3",
            ("virsh -c qemu:///system net-start -- vs-net3",),
            ("virsh -c qemu:///system net-destroy -- vs-net3",),
        ),
        ("attach", "vs-n-0", ("ip link set dev vs-n-0 master vs-virbr7",), ("ip link set dev vs-n-0 nomaster",)),
    ]
    assert plan.actions[0].promises == (NetworkActive("vs-net3"),)
    assert plan.skipped == ()  # bridge_missing is covered by the network start


def test_bridge_and_tap_down_are_brought_up() -> None:
    assert summary(plan_for("bridge-admin-down")) == [
        ("bridge-up", "vs-br0", ("ip link set dev vs-br0 up",), ("ip link set dev vs-br0 down",))
    ]
    plan = plan_for("tap-admin-down")
    assert summary(plan) == [
        ("tap-up", "vs-web-0", ("ip link set dev vs-web-0 up",), ("ip link set dev vs-web-0 down",))
    ]
    assert plan.actions[0].promises == (LinkUp("vs-web-0"),)


def test_one_bridge_up_for_every_vif_on_it_and_actions_in_kind_order() -> None:
    vifs = [
        DeclaredVif(f"vs-d{i}", f"u{i}", DomainState.RUNNING, 0, "bridge", f"52:54:00:00:00:0{i}", source="vs-brx")
        for i in range(3)
    ]
    vifs = [replace(v, target=f"vs-t{v.domain[-1]}") for v in vifs]
    links = [ipjson.bridge("vs-brx", up=False), ipjson.tap("vs-t0", master="vs-brx")]
    links += [ipjson.tap("vs-t1"), ipjson.tap("vs-t2", master="vs-brx", up=False)]
    snap = ipjson.snapshot(vifs, links)
    plan = plan_fixes(snap, bind(snap))
    assert [(a.kind, a.target) for a in plan.actions] == [
        (ActionKind.BRIDGE_UP, "vs-brx"),
        (ActionKind.ATTACH, "vs-t1"),
        (ActionKind.TAP_UP, "vs-t2"),
    ]
    assert plan == plan_fixes(snap, bind(snap))  # deterministic


def test_link_state_down_is_left_alone_unless_asked() -> None:
    plan = plan_for("libvirt-link-state-down")
    assert plan.actions == ()
    assert [(s.reason, s.target) for s in plan.skipped] == [("link_state_down", "vs-web-0")]
    assert "--fix-link-down" in plan.skipped[0].why

    plan = plan_for("libvirt-link-state-down", link_down=True)
    assert summary(plan) == [
        (
            "link-state-up",
            "vs-web/52:54:00:10:00:01",
            ("virsh -c qemu:///system domif-setlink -- vs-web 52:54:00:10:00:01 up",),
            ("virsh -c qemu:///system domif-setlink -- vs-web 52:54:00:10:00:01 down",),
        )
    ]
    assert plan.actions[0].promises == (VifLinkState("vs-web", "52:54:00:10:00:01", "up"),)


def test_link_state_down_gate_covers_every_other_fault_of_that_vif() -> None:
    plan = plan_for("missing-and-link-state-down")
    assert plan.actions == ()
    assert [s.reason for s in plan.skipped] == ["link_state_down"]
    plan = plan_for("missing-and-link-state-down", link_down=True)
    assert [a.kind for a in plan.actions] == [ActionKind.LINK_STATE_UP]
    assert [s.reason for s in plan.skipped] == ["link_missing"]


@pytest.mark.parametrize(
    ("name", "reason", "words"),
    [
        ("bridge-missing", "bridge_missing", "does not create bridges"),
        ("target-missing", "link_missing", "only QEMU can recreate it"),
        ("direct-wrong-lower", "lower_mismatch", "re-plug the interface"),
        ("direct-lower-down", "lower_down", "host NIC"),
        ("tap-no-carrier", "no_carrier", "no QEMU process"),
        ("ovs-interface-error", "ovs_error", "ovs-vsctl get Interface"),
        ("ovs-unavailable", "source_unavailable", "nothing is changed blind"),
        ("network-undefined", "network_missing", "net-define"),
    ],
)
def test_faults_without_a_safe_fix_are_left_alone_with_a_reason(name: str, reason: str, words: str) -> None:
    plan = plan_for(name)
    assert plan.actions == ()
    assert reason in [s.reason for s in plan.skipped]
    assert words in next(s.why for s in plan.skipped if s.reason == reason)


@pytest.mark.parametrize("name", ["linux-bridge-bound", "ovs-bound", "domain-states", "unverified-types"])
def test_healthy_inactive_and_unverifiable_vifs_get_no_plan(name: str) -> None:
    assert plan_for(name, host=True, link_down=True) == Plan(uri="qemu:///system")


def test_every_problem_is_fixed_left_alone_or_not_a_fault() -> None:
    for problem in Problem:
        assert (problem in VIF_FIXES) + (problem in LEFT_ALONE) + (problem in NOT_FAULTS) == 1, problem


def finding(check: str, *evidence: tuple[str, int | str]) -> Finding:
    return Finding(check, Severity.WARNING, "host", "m", evidence=evidence, subject="host")


def test_host_sysctls_only_with_host_and_from_the_check_id() -> None:
    snap = case("linux-bridge-bound")
    found = [
        finding("host.ip_forward_off", ("net.ipv4.ip_forward", 0)),
        finding("sysctl.conntrack_max_low", ("net.netfilter.nf_conntrack_max", 1000), ("minimum", 500000)),
        finding("sysctl.port_range_narrow", ("ports", 100), ("minimum", 40000)),
        finding("sysctl.somaxconn_low", ("minimum", 1024)),
        finding("perf.emulated_model"),  # not a host sysctl: not planned, not skipped
    ]
    without = plan_fixes(snap, bind(snap), found)
    assert without.actions == ()
    assert {(s.reason, s.target) for s in without.skipped} == {
        ("host.ip_forward_off", "net.ipv4.ip_forward"),
        ("sysctl.conntrack_max_low", "net.netfilter.nf_conntrack_max"),
        ("sysctl.port_range_narrow", "net.ipv4.ip_local_port_range"),
        ("sysctl.somaxconn_low", "net.core.somaxconn"),
    }
    plan = plan_fixes(snap, bind(snap), found, host=True, sysctl_dir="/tmp/vs-sysctl.d")
    got = {a.target: a.promises[0] for a in plan.actions}
    assert got == {
        "net.ipv4.ip_forward": SysctlIs("net.ipv4.ip_forward", "1"),
        "net.netfilter.nf_conntrack_max": SysctlIs("net.netfilter.nf_conntrack_max", "500000"),
        "net.ipv4.ip_local_port_range": SysctlIs("net.ipv4.ip_local_port_range", "21000 60999"),
        "net.core.somaxconn": SysctlIs("net.core.somaxconn", "4096"),
    }
    fwd = next(a for a in plan.actions if a.target == "net.ipv4.ip_forward")
    assert fwd.commands == (
        "write /tmp/vs-sysctl.d/90-vifscope-net.ipv4.ip_forward.conf: "
        "# written by vifscope doctor --fix-host for host.ip_forward_off\nnet.ipv4.ip_forward = 1",
        "sysctl -w net.ipv4.ip_forward=1",
    )
    assert fwd.undo_commands[0] == "sysctl -w net.ipv4.ip_forward=<value before apply>"
    assert Path(fwd.undo[1].path).name == "90-vifscope-net.ipv4.ip_forward.conf"  # type: ignore[union-attr]


def test_br_netfilter_drop_turns_off_both_bridge_nf_calls_after_the_vif_fixes() -> None:
    snap = case("tap-detached")
    plan = plan_fixes(snap, bind(snap), [finding("host.br_netfilter_drop")], host=True)
    assert [(a.kind.value, a.target) for a in plan.actions] == [
        ("attach", "vs-web-0"),
        ("sysctl", "net.bridge.bridge-nf-call-ip6tables"),
        ("sysctl", "net.bridge.bridge-nf-call-iptables"),
    ]
