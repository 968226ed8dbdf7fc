"""``qos:`` of an apply file beyond the golden plans: what export writes of a NIC's rates (and
that applying it changes nothing), what rollback restores, that an unplug clears tc-backend
QoS first, and the refusals (one backend at a time, a guest that is not running)."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

from tests.golden_apply.test_apply_golden import load_state
from vifscope.actions.declare.docs import plan_doc, plan_lines
from vifscope.actions.declare.export import export_doc, restore_target
from vifscope.actions.declare.load import parse_desired, schema_text
from vifscope.actions.declare.plan import plan_changes
from vifscope.actions.declare.vifqos import declared_qos
from vifscope.model import DeclaredVif, DomainState
from vifscope.model.desired import HostState, QosSpec, VifKind
from vifscope.model.qos import Bandwidth, BandwidthRate
from vifscope.model.qospolicy import VifPolicy

CASES = Path(__file__).resolve().parents[1] / "golden_apply" / "cases"
MAC1, MAC2 = "52:54:00:10:00:01", "52:54:00:10:00:02"


def _file(qos1: str) -> str:
    return (
        "domains:\n  web1:\n    interfaces:\n"
        f"      - {{network: tenant-a, mac: '{MAC1}', qos: {qos1}}}\n"
        f"      - {{network: tenant-a, mac: '{MAC2}'}}\n"
    )


def _rated(state: HostState, mac: str, average: int) -> HostState:
    """``state`` with ``mac``'s tc policy at ``average`` (enforced)."""
    guest = state.guests[0]
    live = tuple(
        replace(v, qos=replace(v.qos, inbound=BandwidthRate(average))) if v.mac == mac and v.qos else v
        for v in guest.live
    )
    return replace(state, guests=(replace(guest, live=live),))


def test_export_writes_each_nics_rates_and_backend() -> None:
    doc, _ = export_doc(load_state(CASES / "qos-clear"))
    [nic] = doc["domains"]["web1"]["interfaces"]
    assert nic["qos"] == {"inbound": 10000, "outbound": {"average": 5000, "peak": 8000, "burst": 256}, "backend": "tc"}
    doc, _ = export_doc(load_state(CASES / "qos-tc-add"))  # no QoS: no qos key (not qos: none)
    assert "qos" not in doc["domains"]["web1"]["interfaces"][0]


def test_rollback_puts_the_previous_rate_back_and_leaves_unmanaged_qos_alone() -> None:
    before = load_state(CASES / "qos-change-rate")
    desired = parse_desired(_file("{inbound: 20000, backend: tc}"))
    target = restore_target(before.only(desired), desired)
    [domain] = target.domains
    assert [v.qos for v in domain.interfaces] == [QosSpec(BandwidthRate(10000), None, "tc"), None]
    after = _rated(before, MAC1, 20000)
    [change] = plan_changes(target, after).changes
    assert (change.kind, change.what) == ("qos", ("qos (tc) inbound 20000 → 10000",))
    assert plan_changes(target, before).changes == ()


def test_rollback_of_a_clear_sets_the_rates_again_and_of_an_add_clears_them() -> None:
    before = load_state(CASES / "qos-clear")
    desired = parse_desired(
        "domains:\n  web1:\n    interfaces:\n      - {network: tenant-a, mac: '52:54:00:10:00:01', qos: none}\n"
    )
    target = restore_target(before.only(desired), desired)
    assert target.domains[0].interfaces[0].qos == QosSpec(BandwidthRate(10000), BandwidthRate(5000, 8000, 256), "tc")
    empty = load_state(CASES / "qos-tc-add")
    added = parse_desired(
        _file("{inbound: 10000, backend: tc}").replace(f"      - {{network: tenant-a, mac: '{MAC2}'}}\n", "")
    )
    assert restore_target(empty.only(added), added).domains[0].interfaces[0].qos == QosSpec()


def test_unplugging_a_nic_with_tc_qos_clears_it_first() -> None:
    state = load_state(CASES / "qos-clear")
    desired = parse_desired(f"domains:\n  web1:\n    interfaces:\n      - {{mac: '{MAC1}', state: absent}}\n")
    lines = plan_lines(plan_changes(desired, state, "/x"))
    assert lines[0] == f"- vif web1 {MAC1} (remove): unplug (network tenant-a); qos (tc) cleared first"
    assert lines[1:5] == [
        "    tc qdisc del dev vnet3 root",
        "    tc qdisc del dev vnet3 ingress",
        "    ip link del dev vsq-17",
        "    virsh -c qemu:///system metadata --remove --live --config -- web1 https://vifscope.dev/xmlns/qos/1",
    ]
    assert lines[-2].endswith("detach-device web1 /x/web1-525400100001.xml --live --config")


def test_one_backend_at_a_time_and_only_on_a_running_guest() -> None:
    state = load_state(CASES / "qos-change-rate")
    plan = plan_changes(parse_desired(_file("{inbound: 10000, backend: libvirt}")), state)
    assert plan.refused == (
        f"domain web1: NIC {MAC1}: its rates are set by backend tc, the file says libvirt; "
        "apply qos: none first (one backend at a time)",
    )
    ovs = replace(
        state,
        guests=(replace(state.guests[0], live=tuple(replace(v, kind=VifKind.OVS) for v in state.guests[0].live)),),
    )
    plan = plan_changes(
        parse_desired(_file("{inbound: 10000, backend: tc}").replace("network: tenant-a", "ovs: ovs0")), ovs
    )
    assert plan.refused == (f"domain web1: NIC {MAC1}: qos on an Open vSwitch port is not applied (yet)",)
    off = replace(state, guests=(replace(state.guests[0], running=False, live=()),))
    plan = plan_changes(parse_desired(_file("{inbound: 10000, backend: tc}")), off)
    assert plan.refused == (f"domain web1: NIC {MAC1}: qos is set on a running guest (start it first)",)


def test_the_snapshot_says_who_declares_a_nics_rates() -> None:
    run = DomainState.RUNNING
    vif = DeclaredVif("web1", "u1", run, 0, "network", MAC1, "virtio", "n1", network="n1", target="vnet1")
    assert declared_qos(vif).backend is None
    libvirt = declared_qos(replace(vif, bandwidth=Bandwidth(BandwidthRate(300))))
    assert (libvirt.backend, libvirt.inbound) == ("libvirt", BandwidthRate(300))
    tc = declared_qos(replace(vif, qos_policy=VifPolicy(MAC1, None, BandwidthRate(40, 80))))
    assert (tc.backend, tc.outbound) == ("tc", BandwidthRate(40, 80))


def test_the_schema_ships_qos_and_the_json_plan_gives_each_command_as_argv() -> None:
    schema = json.loads(schema_text())
    assert schema["$defs"]["vif"]["properties"]["qos"] == {"$ref": "#/$defs/qos"}
    assert schema["$defs"]["qos"]["oneOf"][0] == {"const": "none"}
    desired = parse_desired((CASES / "qos-tc-add" / "file.yaml").read_text())
    doc = plan_doc(plan_changes(desired, load_state(CASES / "qos-tc-add")))
    [step] = doc["changes"][0]["steps"]
    assert step["qos_set"] == {"domain": "web1", "mac": MAC1, "backend": "tc", "inbound": "10000", "outbound": "0"}
    assert step["argvs"][0] == ["tc", "qdisc", "replace", "dev", "vnet3", "root", "handle", "1:", "htb", "default", "1"]
    assert [shlex.join(a) for a in step["argvs"]] == step["commands"]
    assert step["equivalent"][-2:] == ["--backend", "tc"]


def test_a_nic_whose_qos_could_not_be_read_is_refused_only_when_its_qos_is_to_change() -> None:
    state = load_state(CASES / "qos-change-rate")
    guest = state.guests[0]
    unread = replace(guest.live[0].qos, site=None, verdict="unknown", error="bad metadata")
    broken = replace(state, guests=(replace(guest, live=(replace(guest.live[0], qos=unread), guest.live[1])),))
    plan = plan_changes(parse_desired(_file("{inbound: 20000, backend: tc}")), broken)
    assert plan.refused == (f"domain web1: NIC {MAC1}: its QoS could not be read: bad metadata",)
    untouched = parse_desired(_file("{inbound: 1, backend: tc}").replace(", qos: {inbound: 1, backend: tc}", ""))
    assert plan_changes(untouched, broken).refused == ()
