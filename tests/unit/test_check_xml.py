"""check-xml's checks over hand-made fault files (tests/data/check-xml/): each file names its
fault (``ID[--variant].xml``) and must give exactly the finding ``xml.ID``; ``clean.xml`` none.

The host side is a HostSnapshot built from ``ip -j`` elements (ipjson), so the link parser is
part of what is tested."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.ipjson import bridge, phys, snapshot, tap
from vifscope.checks.macs import StoreView
from vifscope.checks.xmlbase import CHECK_IDS, HostView
from vifscope.checks.xmlcheck import check_domain, mac_problem
from vifscope.cli.checkxml import StoreRead, UsageError, exit_code, parse_file
from vifscope.model import (
    DeclaredVif,
    DomainState,
    Finding,
    HostSnapshot,
    LibvirtNetwork,
    Severity,
    Shaping,
    SourceError,
)
from vifscope.model.mac import MacRecord, MacState, parse_mac
from vifscope.sources.kernel.kconfig import parse_kernel_config

DATA = Path(__file__).resolve().parents[1] / "data" / "check-xml"
FAULTS = sorted(p for p in DATA.glob("*.xml") if p.stem != "clean" and not p.stem.startswith("usage--"))


def _net(
    name: str, active: bool, autostart: bool, mode: str, br: str | None, vport: str | None = None
) -> LibvirtNetwork:
    return LibvirtNetwork(name, f"uuid-{name}", active, autostart, mode, br, virtualport=vport)


def host_snapshot() -> HostSnapshot:
    """br0 (Linux, up), brdown (down), eth1 (a NIC), busytap (a tap), ovsbr (OVS netdev: no
    kernel link); the networks the files name; another domain using 52:54:00:00:00:99; and
    cx-clean itself running (the clean file redefines it: its own target and MAC are no clash)."""
    links = [bridge("br0"), bridge("brdown", up=False), phys("eth1"), tap("busytap"), tap("cx-own0", master="br0")]
    networks = [
        _net("default", True, True, "nat", "virbr0"),
        _net("idle", False, False, "nat", "virbr9"),
        _net("boot", False, True, "nat", "virbr8"),
        _net("ovslan", True, True, "bridge", "ovsbr", "openvswitch"),
        _net("macv", True, True, "bridge", None),
    ]
    other = DeclaredVif("other", "u-other", DomainState.SHUTOFF, 0, "bridge", "52:54:00:00:00:99", source="br0")
    own = DeclaredVif(
        "cx-clean", "", DomainState.RUNNING, 6, "bridge", "52:54:00:10:00:07", source="br0", target="cx-own0"
    )
    return snapshot([other, own], links, networks=networks, ovs_bridges=["ovsbr"], ovs_available=True)


INBOUND_ONLY = Shaping(sfq=True, police=False)  # a kernel that shapes <inbound> but cannot police <outbound>


def host_view(shaping: Shaping | None = INBOUND_ONLY) -> HostView:
    taken = MacRecord(parse_mac("52:54:00:00:00:77"), MacState.ALLOCATED, "lab", "someone", "testhost")
    return HostView(host_snapshot(), StoreView((taken,), (), "testhost", 1000.0), shaping)


def findings(path: Path, host: HostView | None = None) -> tuple[Finding, ...]:
    return check_domain(parse_file(str(path), path.read_text()), host or host_view())


def test_every_check_id_has_a_fault_file() -> None:
    named = {"xml." + p.stem.split("--")[0] for p in FAULTS}
    assert named == set(CHECK_IDS)


@pytest.mark.parametrize("path", FAULTS, ids=lambda p: p.stem)
def test_each_fault_file_gives_exactly_its_finding(path: Path) -> None:
    want = "xml." + path.stem.split("--")[0]
    got = findings(path)
    assert {f.check for f in got} == {want}, [(f.check, f.message) for f in got]
    for f in got:
        assert f.domain and f.domain.startswith("cx-")
        assert dict(f.evidence)["interface"] is not None
        assert f.fix is not None and f.fix.text()


def test_the_clean_file_gives_nothing() -> None:
    assert findings(DATA / "clean.xml") == ()


def test_the_clean_file_is_not_clean_for_another_domain() -> None:
    """cx-own0 and 52:54:00:10:00:07 are cx-clean's own: under another name they clash."""
    text = (DATA / "clean.xml").read_text().replace("<name>cx-clean</name>", "<name>cx-else</name>")
    got = check_domain(parse_file("else.xml", text), host_view())
    assert {f.check for f in got} == {"xml.target_in_use", "xml.mac_in_use"}


@pytest.mark.parametrize(
    ("stem", "severity"),
    [
        ("network_inactive", Severity.ERROR),
        ("network_inactive--autostart", Severity.WARNING),
        ("model_not_virtio", Severity.WARNING),
        ("model_not_virtio--none", Severity.INFO),
        ("mac_random", Severity.INFO),
        ("target_reserved", Severity.WARNING),
        ("bridge_down", Severity.WARNING),
        ("bridge_missing", Severity.ERROR),
    ],
)
def test_severities(stem: str, severity: Severity) -> None:
    assert {f.severity for f in findings(DATA / f"{stem}.xml")} == {severity}


def test_two_interfaces_with_one_mac_are_both_reported() -> None:
    got = findings(DATA / "mac_in_use--same-file.xml")
    assert sorted(dict(f.evidence)["interface"] for f in got) == [0, 1]


def test_bandwidth_follows_the_kernel() -> None:
    path = DATA / "bandwidth_unsupported.xml"
    assert findings(path, host_view(Shaping(sfq=True, police=True))) == ()
    assert findings(path, host_view(None)) == ()  # unknown kernel: not evaluated
    inbound = (DATA / "clean.xml").read_text()
    got = check_domain(parse_file("c.xml", inbound), host_view(Shaping(sfq=False, police=True)))
    assert [f.check for f in got] == ["xml.bandwidth_unsupported"]
    assert "sfq" in got[0].message and "police" not in got[0].message


def test_store_quarantine_is_a_warning_and_own_allocation_is_fine() -> None:
    path = DATA / "mac_store_taken.xml"
    base = host_view()
    for rec, want in (
        (MacRecord(parse_mac("52:54:00:00:00:77"), MacState.QUARANTINED, "lab", None, "h", 0.0, 99.0), "warning"),
        (MacRecord(parse_mac("52:54:00:00:00:77"), MacState.ALLOCATED, "lab", "cx-store", "testhost"), None),
    ):
        host = HostView(base.snap, StoreView((rec,), (), "testhost", 1000.0), base.shaping)
        assert [f.severity.value for f in findings(path, host)] == ([want] if want else [])
    assert findings(path, HostView(base.snap, None, base.shaping)) == ()  # no store: nothing to compare


def test_ovs_network_onto_a_missing_bridge_is_reported() -> None:
    snap = host_snapshot()
    host = HostView(snapshot(snap.vifs, [bridge("br0")], networks=snap.networks), None, None)
    got = findings(DATA / "clean.xml", host)
    assert {(f.check, f.subject) for f in got if f.check == "xml.bridge_missing"} == {("xml.bridge_missing", "ovsbr")}


@pytest.mark.parametrize(
    ("mac", "bad"),
    [
        ("52:54:00:12:34:56", False),
        ("01:00:5e:00:00:01", True),
        ("00:00:00:00:00:00", True),
        ("52-54-00-12-34-56", True),
        ("52:54:00:12:34", True),
        ("zz:54:00:12:34:56", True),
    ],
)
def test_mac_problem(mac: str, bad: bool) -> None:
    assert (mac_problem(mac) is not None) is bad


@pytest.mark.parametrize("stem", ["usage--not-xml", "usage--not-a-domain"])
def test_files_that_are_not_domains_are_usage_errors(stem: str) -> None:
    path = DATA / f"{stem}.xml"
    with pytest.raises(UsageError) as err:
        parse_file(str(path), path.read_text())
    assert str(path) in str(err.value) and err.value.hint


def test_kernel_config() -> None:
    text = "CONFIG_NET_SCH_HTB=y\n# CONFIG_NET_SCH_SFQ is not set\nCONFIG_NET_ACT_POLICE=m\n"
    assert parse_kernel_config(text) == Shaping(sfq=False, police=True)
    assert parse_kernel_config("CONFIG_NET_SCH_SFQ=y\n") == Shaping(sfq=True, police=False)


def test_ovsdb_down_leaves_an_unknown_bridge_to_exit_3() -> None:
    """br-gone may be an OVS netdev bridge (no kernel link) OVSDB did not list: not "missing"."""
    base = host_snapshot()
    down = snapshot(base.vifs, [bridge("br0")], networks=base.networks, errors=[SourceError("ovs", "no ovsdb")])
    host = HostView(down, None, None)
    missing = parse_file("m.xml", (DATA / "bridge_missing.xml").read_text())
    assert check_domain(missing, host) == ()
    assert exit_code(down, [missing], (), StoreRead(None)) == 3
    clean_br0 = parse_file("r.xml", (DATA / "mac_random.xml").read_text())  # br0 is a kernel link
    assert exit_code(down, [clean_br0], check_domain(clean_br0, host), StoreRead(None)) == 0
    declared = parse_file("k.xml", (DATA / "bridge_kind.xml").read_text())  # declares OVS
    assert exit_code(down, [declared], (), StoreRead(None)) == 3
    assert exit_code(host_snapshot(), [missing], check_domain(missing, host_view()), StoreRead(None)) == 1


def test_networks_unreadable_exit_3_only_for_a_file_with_a_network_interface() -> None:
    base = host_snapshot()
    failed = snapshot(base.vifs, [bridge("br0")], errors=[SourceError("libvirt-network", "listAllNetworks failed")])
    net_file = parse_file("n.xml", (DATA / "network_missing.xml").read_text())
    assert check_domain(net_file, HostView(failed)) == ()  # unknown, not "missing"
    assert exit_code(failed, [net_file], (), StoreRead(None)) == 3
    br_file = parse_file("b.xml", (DATA / "mac_random.xml").read_text())
    assert exit_code(failed, [br_file], check_domain(br_file, HostView(failed)), StoreRead(None)) == 0
