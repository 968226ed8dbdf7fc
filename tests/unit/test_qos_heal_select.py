"""What watch --heal's QoS part selects from one table update (pure): taps gone or re-created
(by ifindex, not by the transitions a user sees), taps that appeared, the ifb a gone tap leaves,
the network's inbound a floor needs, and how qos show states a floor."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.unit.ipjson import snapshot, tap
from vifscope.actions.audit import AuditLog
from vifscope.bind.join import bind
from vifscope.bind.qosdscp import mark_dict
from vifscope.model import DeclaredVif, DomainState, SourceError, VifBinding
from vifscope.model.qos import BandwidthRate, DirectionQos, QosVerdict
from vifscope.model.qosdscp import DscpMark
from vifscope.model.qospolicy import Created, VifPolicy
from vifscope.report.qos import direction_text
from vifscope.sources.libvirt.netxml import parse_network_xml
from vifscope.watch.qosheal import QosKernel, qos_after_update, stale_ifb, tap_changes
from vifscope.watch.state import vif_key

MAC = "52:54:00:00:00:01"
POLICY = VifPolicy(MAC, None, BandwidthRate(500), created=Created("vnet0", ingress=True, ifb="vsq-41"))
VIF = DeclaredVif("web1", "u1", DomainState.RUNNING, 0, "ethernet", MAC, target="vnet0", qos_policy=POLICY)


def table(links: list[dict[str, Any]], vif: DeclaredVif = VIF) -> dict[Any, VifBinding]:
    return {vif_key(b.vif): b for b in bind(snapshot([vif], links))}


def with_index(raw: dict[str, Any], ifindex: int) -> dict[str, Any]:
    return {**raw, "ifindex": ifindex}


def test_a_deleted_tap_is_gone_and_nothing_arrived() -> None:
    before = table([with_index(tap("vnet0"), 41)])
    after = table([])
    got = tap_changes(before, after)
    assert [b.vif.target for b in got.gone] == ["vnet0"] and got.arrived == frozenset()


def test_a_recreated_tap_is_both_gone_and_arrived_even_when_nothing_else_changed() -> None:
    before = table([with_index(tap("vnet0"), 41)])
    after = table([with_index(tap("vnet0"), 57)])
    assert before[vif_key(VIF)].status == after[vif_key(VIF)].status  # no transition a user would see
    got = tap_changes(before, after)
    assert [b.link.ifindex for b in got.gone if b.link] == [41] and got.arrived == {"vnet0"}


def test_the_same_tap_is_neither() -> None:
    same = table([with_index(tap("vnet0"), 41)])
    assert tap_changes(same, same) == tap_changes({}, {})


def test_a_domain_stopping_makes_its_tap_gone() -> None:
    before = table([with_index(tap("vnet0"), 41)])
    after = table([], replace(VIF, domain_state=DomainState.SHUTOFF, target=None))
    assert [b.vif.domain for b in tap_changes(before, after).gone] == ["web1"]


def test_the_ifb_of_a_gone_tap_is_stale_but_not_while_its_tap_lives() -> None:
    assert stale_ifb(VIF, snapshot([VIF], [])) == "vsq-41"
    assert stale_ifb(VIF, snapshot([VIF], [with_index(tap("vnet0"), 41)])) is None
    foreign = replace(VIF, qos_policy=replace(POLICY, created=Created("vnet0", ingress=True, ifb="ifb0")))
    assert stale_ifb(foreign, snapshot([foreign], [])) is None  # not a name vifscope gives
    assert stale_ifb(replace(VIF, qos_policy=None), snapshot([VIF], [])) is None


def test_a_network_inbound_average_is_read_and_a_portgroup_one_is_not() -> None:
    xml = """<network><name>n</name><bandwidth><inbound average='1000' peak='2000'/></bandwidth>
      <portgroup name='p'><bandwidth><inbound average='5'/></bandwidth></portgroup></network>"""
    assert parse_network_xml(xml, active=True, autostart=False).inbound_average == 1000
    bare = (
        "<network><name>n</name><portgroup name='p'><bandwidth><inbound average='5'/></bandwidth></portgroup></network>"
    )
    assert parse_network_xml(bare, active=True, autostart=False).inbound_average is None


def test_qos_show_cells_say_the_declared_floor() -> None:
    only_floor = DirectionQos(BandwidthRate(floor=200), None, QosVerdict.NONE)
    assert direction_text(only_floor).startswith("floor 1.6 Mbit/s")
    both = DirectionQos(BandwidthRate(1000, floor=200), None, QosVerdict.MISSING)
    assert direction_text(both).splitlines()[0] == "8.0 Mbit/s, floor 1.6 Mbit/s"
    assert direction_text(DirectionQos(None, None, QosVerdict.NONE)) == "-"


def test_qos_show_calls_a_mark_on_a_redirected_tap_bypassed() -> None:
    marked = replace(VIF, dscp_mark=46)
    chain = {"vnet0": DscpMark("vnet0", "tap_vnet0", 46, 46)}
    assert mark_dict(marked, chain)["verdict"] == "enforced"
    assert mark_dict(marked, chain, frozenset({"vnet0"}))["verdict"] == "bypassed"
    assert mark_dict(marked, {}, frozenset({"vnet0"}))["verdict"] == "missing"


def test_nothing_is_released_when_the_link_dump_failed(tmp_path: Path) -> None:
    """A failed dump leaves no links: every tap would look gone, every ifb stale."""

    def tripwire(*_args: object) -> Any:
        raise AssertionError("the kernel was touched")

    before = table([with_index(tap("vnet0"), 41)])
    failed = snapshot([VIF], [], errors=[SourceError("netlink", "dump failed", "")])
    changes = tap_changes(before, {vif_key(b.vif): b for b in bind(failed)})
    assert changes.gone  # it does look gone
    kernel = QosKernel(read_marks=tripwire, run=tripwire, exists=tripwire)
    audit = AuditLog(tmp_path / "audit.jsonl")
    assert qos_after_update(changes, failed, lambda _n, _u: True, audit, False, kernel) == []
    assert not (tmp_path / "audit.jsonl").exists()
