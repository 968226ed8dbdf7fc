"""QoS read side, the pure parts: ``<bandwidth>`` from libvirt's own test XML, the verdict rules
(tolerance, direction swap, how directions combine), units shown to humans and the exact
``virsh domiftune`` argument doctor suggests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden_qos.tcbuild import shaping
from vifscope.bind.qos import combine, differences, direction, judge_vif
from vifscope.checks.qos import tune_value
from vifscope.model import DomainState, HostSnapshot, ObservedLink
from vifscope.model.qos import Bandwidth, BandwidthRate, Enforced, QosVerdict, bits
from vifscope.report.qos import qos_exit_code, rate_text, size
from vifscope.sources.libvirt.bandwidth import BandwidthXmlError, bandwidth_by_mac, parse_bandwidth
from vifscope.sources.libvirt.domxml import parse_domain_xml

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "domains"
V = QosVerdict


def _vifs(name: str, state: DomainState = DomainState.RUNNING):  # type: ignore[no-untyped-def]
    return parse_domain_xml((CORPUS / name).read_text(), state)


def test_corpus_bandwidth_is_parsed_in_libvirts_units() -> None:
    (vif,) = [v for v in _vifs("net-bandwidth.xml") if v.bandwidth]
    assert vif.bandwidth == Bandwidth(BandwidthRate(1000, 4000, 1024), BandwidthRate(128, 256, 32768))


def test_corpus_floor_only_inbound_declares_nothing_on_the_tap() -> None:
    bws = [v.bandwidth for v in _vifs("net-bandwidth2.xml")]
    floor = Bandwidth(BandwidthRate(floor=200), None)
    assert floor in bws
    assert floor.inbound is not None and not floor.inbound.shapes


def test_interfaces_without_bandwidth_have_none() -> None:
    vifs = _vifs("domain-qemu-interface-filterref.xml")
    assert Bandwidth(BandwidthRate(1234), BandwidthRate(5678)) in [v.bandwidth for v in vifs]
    assert Bandwidth(BandwidthRate(100), BandwidthRate(100)) in [v.bandwidth for v in vifs]
    assert None in [v.bandwidth for v in vifs]


def test_bandwidth_by_mac_reads_the_persistent_document() -> None:
    by_mac = bandwidth_by_mac((CORPUS / "net-bandwidth.xml").read_text())
    assert by_mac["52:54:00:24:a5:9f"] == Bandwidth(BandwidthRate(1000, 4000, 1024), BandwidthRate(128, 256, 32768))
    with pytest.raises(BandwidthXmlError):
        bandwidth_by_mac("<network/>")


@pytest.mark.parametrize(
    ("xml", "want"),
    [
        ("<bandwidth><inbound average='x' peak='20'/></bandwidth>", Bandwidth(BandwidthRate(peak=20))),
        ("<bandwidth><inbound average='-5'/></bandwidth>", None),
        ("<bandwidth/>", None),
        ("<bandwidth><outbound average=' 7 '/></bandwidth>", Bandwidth(None, BandwidthRate(7))),
    ],
)
def test_odd_attributes_read_as_unset(xml: str, want: Bandwidth | None) -> None:
    import xml.etree.ElementTree as ET

    assert parse_bandwidth(ET.fromstring(xml)) == want


@pytest.mark.parametrize(
    ("got", "verdict"),
    [
        (1000.0, V.ENFORCED),
        (1009.0, V.ENFORCED),  # within 1 %
        (1020.0, V.DRIFT),
        (990.5, V.ENFORCED),
        (980.0, V.DRIFT),
    ],
)
def test_rates_compare_with_a_one_percent_tolerance(got: float, verdict: QosVerdict) -> None:
    declared = BandwidthRate(1000)
    assert direction(declared, Enforced("htb", got, got, 1.6)).verdict is verdict


def test_htb_ceil_defaults_to_the_average_and_police_burst_to_the_average() -> None:
    assert differences(BandwidthRate(1000), Enforced("htb", 1000, 2000, 1.6)) == ("peak",)
    assert differences(BandwidthRate(500), Enforced("police", 500, None, 500)) == ()
    assert differences(BandwidthRate(500), Enforced("police", 500, None, 64)) == ("burst",)
    assert differences(BandwidthRate(500, peak=900), Enforced("police", 500, None, 500)) == ()  # peak ignored
    assert differences(BandwidthRate(500), Enforced("tbf")) == ("mechanism",)


def test_a_burst_of_few_ticks_at_a_high_rate_is_within_tolerance() -> None:
    # 10 Gbit/s, 2 KiB: one 64 ns tick is 80 bytes, so tc's read-back may be a tick off (4 %).
    assert differences(BandwidthRate(1_250_000, burst=2), Enforced("htb", 1_250_000, 1_250_000, 2.078)) == ()


@pytest.mark.parametrize(
    ("inbound", "outbound", "want"),
    [
        (V.ENFORCED, V.ENFORCED, V.ENFORCED),
        (V.ENFORCED, V.NONE, V.ENFORCED),
        (V.ENFORCED, V.MISSING, V.PARTIAL),
        (V.MISSING, V.UNDECLARED, V.PARTIAL),
        (V.MISSING, V.NONE, V.MISSING),
        (V.MISSING, V.MISSING, V.MISSING),
        (V.DRIFT, V.MISSING, V.DRIFT),
        (V.NONE, V.UNDECLARED, V.UNDECLARED),
        (V.NONE, V.NONE, V.NONE),
        (V.UNSUPPORTED, V.NONE, V.UNSUPPORTED),
    ],
)
def test_a_vifs_verdict_from_its_directions(inbound: QosVerdict, outbound: QosVerdict, want: QosVerdict) -> None:
    assert combine(inbound, outbound) is want
    assert combine(outbound, inbound) is want


def _snap(kind: str, vif_xml: str) -> HostSnapshot:
    from datetime import UTC, datetime

    xml = f"<domain type='qemu' id='1'><name>d</name><uuid>u</uuid><devices>{vif_xml}</devices></domain>"
    vifs = parse_domain_xml(xml, DomainState.RUNNING)
    link = ObservedLink("t0", 5, kind, True, "up", True, 1500)
    return HostSnapshot("h", "test:///", datetime(2026, 1, 1, tzinfo=UTC), vifs, (link,))


def test_a_network_vif_on_a_macvtap_is_judged_with_the_sides_swapped() -> None:
    iface = "<interface type='network'><mac address='52:54:00:00:00:01'/><source network='n'/><target dev='t0'/>"
    iface += "<bandwidth><inbound average='1000'/></bandwidth></interface>"
    tc = shaping(
        ["qdisc add dev t0 root handle 1: htb default 1", "class add dev t0 parent 1: classid 1:1 htb rate 1000kbps"]
    )
    tap = judge_vif(_snap("tun", iface).vifs[0], _snap("tun", iface), tc, {})
    macvtap = judge_vif(_snap("macvtap", iface).vifs[0], _snap("macvtap", iface), tc, {})
    assert (tap.inbound.verdict, tap.outbound.verdict) == (V.ENFORCED, V.NONE)
    assert (macvtap.inbound.verdict, macvtap.outbound.verdict) == (V.MISSING, V.UNDECLARED)


def test_config_differing_from_live_is_flagged() -> None:
    iface = (
        "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='b'/><target dev='t0'/></interface>"
    )
    snap = _snap("tun", iface)
    later = Bandwidth(BandwidthRate(2000))
    assert judge_vif(snap.vifs[0], snap, shaping([]), {}, later).config_differs
    assert not judge_vif(snap.vifs[0], snap, shaping([]), {}, None).config_differs


def test_exit_code_three_when_tc_could_not_be_read() -> None:
    from vifscope.model import SourceError

    snap = _snap("tun", "<interface type='bridge'><mac address='52:54:00:00:00:01'/><target dev='t0'/></interface>")
    vifs = (judge_vif(snap.vifs[0], snap, shaping([]), {}),)
    assert qos_exit_code(snap, vifs, ()) == 0
    assert qos_exit_code(snap, vifs, (SourceError("tc", "dump refused"),)) == 3
    assert qos_exit_code(snap, vifs, (SourceError("libvirt-config", "gone"),)) == 0


@pytest.mark.parametrize(
    ("kbps", "text"),
    [(1000, "8.0 Mbit/s"), (125, "1.0 Mbit/s"), (1_250_000, "10.0 Gbit/s"), (1, "8.0 kbit/s"), (0.1, "800 bit/s")],
)
def test_rates_are_shown_in_bits_per_second(kbps: float, text: str) -> None:
    assert bits(kbps) == text


def test_rate_text_and_sizes() -> None:
    assert rate_text(1000, 2000, 256) == "8.0 Mbit/s (peak 16.0 Mbit/s), burst 256 KiB"
    assert rate_text(1000, 1000, None) == "8.0 Mbit/s"
    assert size(1.5625) == "1.6 KiB" and size(2048) == "2.0 MiB"


@pytest.mark.parametrize(
    ("rate", "value"),
    [
        (BandwidthRate(1000, 2000, 256), "1000,2000,256"),
        (BandwidthRate(500, None, 500), "500,,500"),
        (BandwidthRate(500), "500"),
        (BandwidthRate(100, floor=50), "100,,,50"),
        (BandwidthRate(floor=50), "0"),
        (None, "0"),
    ],
)
def test_domiftune_values(rate: BandwidthRate | None, value: str) -> None:
    """virsh's average[,peak[,burst[,floor]]] (virshParseRateStr skips empty fields; 0 clears)."""
    assert tune_value(rate) == value


def test_short_or_foreign_tc_messages_are_skipped() -> None:
    """A class whose TCA_HTB_PARMS is short, a police action without its parameters, and a
    non-htb class read as nothing (never a crash, never a made-up rate)."""
    from tests.golden_qos.tcbuild import RTM_NEWTCLASS, RTM_NEWTFILTER, Host, attr, nest
    from vifscope.sources.kernel.tcshaping import parse_classes, parse_police_filters

    host = Host()
    short = host.message(RTM_NEWTCLASS, "t0", 0x10001, 0xFFFFFFFF, 0, attr(1, b"htb\0"), nest(2, attr(1, b"\0" * 20)))
    other = host.message(RTM_NEWTCLASS, "t0", 0x10002, 0xFFFFFFFF, 0, attr(1, b"hfsc\0"), nest(2, attr(1, b"\0" * 44)))
    assert parse_classes([short + other], host.name_of) == []
    bare = nest(7, nest(1, attr(1, b"police\0"), nest(2)))
    msg = host.message(RTM_NEWTFILTER, "t0", 0x800800, 0xFFFFFFF2, 0x30300, attr(1, b"u32\0"), nest(2, bare))
    assert parse_police_filters([msg], host.name_of) == []


@pytest.mark.parametrize("stdout", ["", "{}\n", "[1]\n[2]\n[3]\n[4]\n", '{"headings": ["name"], "data": 5}\n' * 4])
def test_odd_ovs_vsctl_output_is_an_ovs_error(stdout: str) -> None:
    from vifscope.sources.ovs import OvsError
    from vifscope.sources.ovsqos import parse_ovs_qos_output

    with pytest.raises(OvsError):
        parse_ovs_qos_output(stdout)


def test_the_human_table_shows_both_sides_in_bits_and_the_verdicts() -> None:
    """What ``vifscope qos`` prints: declared → in force [mechanism], each direction's verdict,
    the vif's verdict (with "config differs"); nothing-on-either-side is a single "-"."""
    from rich.console import Console

    from vifscope.report.qostable import qos_table

    iface = "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='b'/><target dev='t0'/>"
    iface += "<bandwidth><inbound average='1000' peak='2000'/><outbound average='500'/></bandwidth></interface>"
    snap = _snap("tun", iface)
    tc = shaping(
        ["qdisc add dev t0 root handle 1: htb default 1", "class add dev t0 parent 1: classid 1:1 htb rate 4000kbps"]
    )
    q = judge_vif(snap.vifs[0], snap, tc, {}, None)
    console = Console(width=250, record=True)
    console.print(qos_table([q]))
    text = console.export_text()
    assert "8.0 Mbit/s (peak 16.0 Mbit/s)" in text  # declared inbound
    assert "→ 32.0 Mbit/s, burst 1.6 KiB [htb]" in text  # in force: 4000 kB/s, ceil = rate, tc's default buffer
    assert "4.0 Mbit/s" in text and "→ -" in text and "missing" in text  # outbound declared, nothing in force
    assert "drift (config differs)" in text


def test_a_config_only_domiftune_shows_as_config_differs() -> None:
    """libvirt's test driver, one connection: ``domiftune --config`` on the running stock domain
    changes only its persistent definition; the live read has no <bandwidth>, the config read
    has it, and the verdict says the two differ."""
    import libvirt

    from vifscope.bind.qos import judge
    from vifscope.model import SourceError
    from vifscope.sources.libvirt.conn import read_state
    from vifscope.sources.qos import read_config_bandwidth

    conn = libvirt.open("test:///default")
    try:
        dom = conn.lookupByName("test")
        (mac,) = [v.mac for v in read_state(conn, "test:///default").vifs if v.domain == "test"]
        dom.setInterfaceParameters(mac, {"inbound.average": 100, "inbound.burst": 8}, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        live = read_state(conn, "test:///default")
        errors: list[SourceError] = []
        config = read_config_bandwidth(conn, errors)
    finally:
        conn.close()
    assert errors == [] and config is not None
    assert config[("test", mac)] == Bandwidth(BandwidthRate(100, burst=8))
    from datetime import UTC, datetime

    snap = HostSnapshot("h", "test:///default", datetime(2026, 1, 1, tzinfo=UTC), live.vifs)
    (q,) = [q for q in judge(snap, shaping([]), {}, config) if q.domain == "test"]
    assert q.config_differs and q.inbound.declared is None and q.config == config[("test", mac)]
