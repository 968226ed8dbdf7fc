"""DSCP marks: names, the nft plan (only vifscope's table, ever), reading nft's text listing,
the verdicts, and the metadata element."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from vifscope.actions.qosdscp import clear_plan, set_plan
from vifscope.bind.qosdscp import mark_verdict
from vifscope.model.qosdscp import DscpError, DscpMark, chain_name, dscp_name, parse_dscp
from vifscope.sources.kernel.nftdscp import parse_dscp_table
from vifscope.sources.libvirt.qosmark import MARK_NS, marks_in_element, parse_marks, render_marks

# nft 1.0.6's listing of what set_plan builds (values print as names; a foreign name: "va")
LISTING = """table netdev vifscope_qos {
\tchain tap_vnet3 {
\t\ttype filter hook ingress device "vnet3" priority -150; policy accept;
\t\tip dscp set ef counter packets 4 bytes 336
\t\tip6 dscp set ef counter packets 0 bytes 0
\t}
\tchain tap_vs_q3_x {
\t\ttype filter hook ingress device "vs-q3-x" priority -150; policy accept;
\t\tip dscp set af41 counter packets 0 bytes 0
\t\tip6 dscp set va counter packets 0 bytes 0
\t}
\tchain tap_gone {
\t\tip dscp set cs1
\t}
}
"""


@pytest.mark.parametrize(("text", "value"), [("ef", 46), ("EF", 46), ("af41", 34), ("cs1", 8), ("0", 0), ("63", 63)])
def test_names_and_numbers(text: str, value: int) -> None:
    assert parse_dscp(text) == value


@pytest.mark.parametrize("text", ["64", "-1", "ef2", "", "0x2e"])
def test_bad_values_are_usage_errors(text: str) -> None:
    with pytest.raises(DscpError):
        parse_dscp(text)


def test_every_planned_command_names_only_vifscope_table() -> None:
    present = DscpMark("vnet3", "tap_vnet3", 46, 46)
    plans = (
        set_plan("vs-q3-x", 46, None),
        set_plan("vnet3", 10, present),
        clear_plan(present, 0),
        clear_plan(present, 2),
    )
    for plan in plans:
        for argv in plan:
            assert argv[0] == "nft" and argv[argv.index("netdev") + 1] == "vifscope_qos", argv
    assert ("nft", "delete", "table", "netdev", "vifscope_qos") in clear_plan(present, 0)
    assert ("nft", "delete", "table", "netdev", "vifscope_qos") not in clear_plan(present, 2)
    assert clear_plan(None, 0) == ()


def test_a_present_chain_is_flushed_not_recreated() -> None:
    plan = set_plan("vnet3", 10, DscpMark("vnet3", "tap_vnet3", 46, 46))
    assert plan[0] == ("nft", "flush", "chain", "netdev", "vifscope_qos", "tap_vnet3")
    assert [a[-3:] for a in plan[1:]] == [("set", "10", "counter")] * 2


def test_listing_parses_by_hook_device_not_chain_name() -> None:
    marks = parse_dscp_table(LISTING)
    assert marks == {
        "vnet3": DscpMark("vnet3", "tap_vnet3", 46, 46),
        "vs-q3-x": DscpMark("vs-q3-x", "tap_vs_q3_x", 34, 44),
    }
    assert marks["vs-q3-x"].value is None  # the families disagree: not one mark
    assert chain_name("vs-q3-x") == "tap_vs_q3_x"


def test_verdicts() -> None:
    m = DscpMark("vnet3", "tap_vnet3", 46, 46)
    assert mark_verdict(46, m) == "enforced"
    assert mark_verdict(10, m) == "drift"
    assert mark_verdict(46, None) == "missing"
    assert mark_verdict(None, m) == "undeclared"
    assert mark_verdict(None, None) == "none"
    assert dscp_name(46) == "ef" and dscp_name(0) == "cs0" and dscp_name(5) == "5"


def test_metadata_round_trip_and_domain_element() -> None:
    text = render_marks({"52:54:00:00:00:02": 8, "52:54:00:00:00:01": 46})
    assert parse_marks(text) == {"52:54:00:00:00:01": 46, "52:54:00:00:00:02": 8}
    dom = ET.fromstring(
        f"<domain><metadata><m:marks xmlns:m='{MARK_NS}'><m:vif mac='52:54:00:AA:00:01' dscp='34'/>"
        "<m:vif mac='52:54:00:aa:00:02' dscp='x'/></m:marks></metadata></domain>"
    )
    assert marks_in_element(dom) == {"52:54:00:aa:00:01": 34}
