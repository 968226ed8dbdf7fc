"""qos set's pure parts: the tc backend's plan and refusals, the merge of a request into the
current policy, the metadata element, the rate syntax and libvirt's kernel prerequisites."""

from __future__ import annotations

import pytest

from vifscope.actions.qosplan import Refusal, TcPlan, merge, plan_tc
from vifscope.actions.qosset import missing_in_kernel
from vifscope.cli.qosset import RateError, parse_rate
from vifscope.model.host import Shaping
from vifscope.model.qos import Bandwidth, BandwidthRate
from vifscope.model.qospolicy import QOS_NS, Created, VifPolicy, VifSite
from vifscope.sources.libvirt.qosmeta import parse_policies, policies_in_domain_xml, render_policies

MAC = "52:54:00:00:00:01"
R = BandwidthRate


def site(**kw: object) -> VifSite:
    base: dict[str, object] = dict(
        domain="web", mac=MAC, dev="vnet3", ifindex=17, root_kind="noqueue", has_ingress=False,
        links=frozenset({"vnet3"}), libvirt_bandwidth=False,
    )  # fmt: skip
    base.update(kw)
    return VifSite(**base)  # type: ignore[arg-type]


def texts(plan: TcPlan | Refusal) -> list[str]:
    assert isinstance(plan, TcPlan), plan
    return [c.text() for c in plan.commands]


def test_a_fresh_vif_gets_htb_on_the_tap_and_an_ifb_for_outbound() -> None:
    plan = plan_tc(site(), None, VifPolicy(MAC, R(1000, 2000, 64), R(500)))
    assert texts(plan) == [
        "tc qdisc replace dev vnet3 root handle 1: htb default 1",
        "tc class add dev vnet3 parent 1: classid 1:1 htb rate 1000kbps ceil 2000kbps burst 64kb",
        "ip link add name vsq-17 type ifb",
        "ip link set dev vsq-17 up",
        "tc qdisc replace dev vsq-17 root handle 1: htb default 1",
        "tc class add dev vsq-17 parent 1: classid 1:1 htb rate 500kbps ceil 500kbps",
        "tc qdisc add dev vnet3 handle ffff: ingress",
        "tc filter add dev vnet3 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect "
        "dev vsq-17",
    ]
    assert isinstance(plan, TcPlan) and plan.created == Created("vnet3", True, True, "vsq-17")


def test_a_change_tears_down_only_what_vifscope_made_then_rebuilds() -> None:
    current = VifPolicy(MAC, R(1000), R(500), created=Created("vnet3", True, True, "vsq-17"))
    here = site(root_kind="htb", has_ingress=True, links=frozenset({"vnet3", "vsq-17"}))
    cmds = texts(plan_tc(here, current, VifPolicy(MAC, R(3000))))
    assert cmds[:3] == [
        "tc qdisc del dev vnet3 root",
        "tc qdisc del dev vnet3 ingress",
        "ip link del dev vsq-17",
    ]
    assert "ifb" not in " ".join(cmds[3:]) and len(cmds) == 5


def test_clear_removes_what_it_made_and_after_a_new_tap_only_the_lingering_ifb() -> None:
    current = VifPolicy(MAC, R(1000), R(500), created=Created("vnet3", True, True, "vsq-9"))
    here = site(root_kind="htb", has_ingress=True, links=frozenset({"vnet3", "vsq-9"}), ifindex=17)
    assert texts(plan_tc(here, current, None)) == [
        "tc qdisc del dev vnet3 root",
        "tc qdisc del dev vnet3 ingress",
        "ip link del dev vsq-9",
    ]
    moved = site(dev="vnet4", root_kind="htb", has_ingress=True, links=frozenset({"vnet4", "vsq-9"}))
    assert texts(plan_tc(moved, current, None)) == ["ip link del dev vsq-9"]


@pytest.mark.parametrize(
    ("here", "target", "words"),
    [
        (site(libvirt_bandwidth=True), VifPolicy(MAC, R(1000)), "libvirt's <bandwidth>"),
        (site(root_kind="tbf"), VifPolicy(MAC, R(1000)), "root tbf qdisc vifscope did not create"),
        (site(has_ingress=True), VifPolicy(MAC, None, R(1000)), "ingress qdisc vifscope did not create"),
    ],
)
def test_foreign_shaping_is_refused(here: VifSite, target: VifPolicy, words: str) -> None:
    plan = plan_tc(here, None, target)
    assert isinstance(plan, Refusal) and words in plan.message


def test_a_foreign_root_does_not_block_an_outbound_only_policy() -> None:
    assert isinstance(plan_tc(site(root_kind="tbf"), None, VifPolicy(MAC, None, R(100))), TcPlan)


def test_merge_keeps_the_direction_not_given_and_zero_removes_one() -> None:
    current = VifPolicy(MAC, R(1000), R(500))
    kept = merge(current, MAC, R(2000), None, set_in=True, set_out=False, clear=False)
    assert kept is not None and (kept.inbound, kept.outbound) == (R(2000), R(500))
    dropped = merge(current, MAC, None, R(0), set_in=False, set_out=True, clear=False)
    assert dropped is not None and (dropped.inbound, dropped.outbound) == (R(1000), None)
    assert merge(current, MAC, None, None, set_in=False, set_out=False, clear=True) is None
    assert merge(None, MAC, R(0), None, set_in=True, set_out=False, clear=False) is None


def test_metadata_round_trips_alone_and_inside_the_domain_xml() -> None:
    pols = {
        MAC: VifPolicy(MAC, R(1000, 2000, 64), R(500), created=Created("vnet3", True, True, "vsq-17")),
        "52:54:00:00:00:02": VifPolicy(
            "52:54:00:00:00:02", None, R(10), created=Created("vnet4", False, True, "vsq-18")
        ),
    }
    text = render_policies(pols)
    assert parse_policies(text) == pols
    prefixed = text.replace("<qos>", f"<vifscope:qos xmlns:vifscope='{QOS_NS}'>").replace("</qos>", "</vifscope:qos>")
    prefixed = prefixed.replace("<vif ", "<vifscope:vif ").replace("</vif>", "</vifscope:vif>")
    domain = f"<domain><name>web</name><metadata>{prefixed}</metadata></domain>"
    assert policies_in_domain_xml(domain) == pols
    assert parse_policies(None) == {}


@pytest.mark.parametrize(
    ("text", "rate"),
    [("1000", R(1000)), ("1000,2000", R(1000, 2000)), ("1000,,64", R(1000, None, 64)), ("0", R(0))],
)
def test_rates_read_as_virsh_domiftune_takes_them(text: str, rate: BandwidthRate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "1,2,3,4", "fast", ",100", "-5"])
def test_bad_rates_are_usage_errors(text: str) -> None:
    with pytest.raises(RateError):
        parse_rate(text)


def test_libvirt_backend_names_what_the_kernel_lacks_per_direction() -> None:
    both = Bandwidth(R(1000), R(1000))
    assert missing_in_kernel(both, Shaping(sfq=False, police=False)) == ("sch_sfq", "act_police")
    assert missing_in_kernel(Bandwidth(None, R(1000)), Shaping(sfq=False, police=True)) == ()
    assert missing_in_kernel(Bandwidth(R(0)), Shaping(sfq=False, police=False)) == ()
    assert missing_in_kernel(both, None) == ()  # kernel config unknown: libvirt is tried, and verified


@pytest.mark.parametrize(
    ("here", "words"),
    [
        (site(ifindex=0), "no tap vnet3"),
        (site(vif_type="direct"), "not direct"),
        (site(ovs=True), "Open vSwitch"),
    ],
)
def test_vifs_the_layout_does_not_fit_are_refused(here: VifSite, words: str) -> None:
    plan = plan_tc(here, None, VifPolicy(MAC, R(1000)))
    assert isinstance(plan, Refusal) and words in plan.message
