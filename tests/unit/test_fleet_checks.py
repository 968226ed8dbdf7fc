"""The fleet-only checks on hand-built fleets (agents' answers from their own report
functions: tests/unit/fleetdocs.py)."""

from __future__ import annotations

from tests.unit.fleetdocs import answer, down, guest
from vifscope.fleet.checks import fleet_findings
from vifscope.fleet.model import HostAnswer, parse_vif
from vifscope.model import Severity

MAC = "52:54:00:ab:cd:01"


def _only(check: str, answers: list[HostAnswer]) -> list[tuple[str, tuple[str, ...], Severity]]:
    return [(f.finding.check, f.hosts, f.finding.severity) for f in fleet_findings(answers) if f.finding.check == check]


def test_a_mac_on_two_hosts_of_one_segment_is_an_error() -> None:
    fleet = [answer("a", [guest("x", MAC)], segment="s1"), answer("b", [guest("y", MAC.upper())], segment="s1")]
    found = [f for f in fleet_findings(fleet) if f.finding.check == "fleet.mac_duplicate"]
    assert [(f.hosts, f.finding.severity, f.finding.mac) for f in found] == [(("a", "b"), Severity.ERROR, MAC)]
    ev = found[0].finding.evidence_dict()
    assert ev["segment"] == "s1" and ev["vifs"] == "a:x, b:y"
    assert found[0].finding.fix is not None and found[0].finding.fix.note


def test_segments_decide_between_error_warning_and_nothing() -> None:
    apart = [answer("a", [guest("x", MAC)], segment="s1"), answer("b", [guest("y", MAC)], segment="s2")]
    assert _only("fleet.mac_duplicate", apart) == []
    unknown = [answer("a", [guest("x", MAC)], segment="s1"), answer("b", [guest("y", MAC)])]
    assert _only("fleet.mac_duplicate", unknown) == [("fleet.mac_duplicate", ("a", "b"), Severity.WARNING)]
    three = [*apart, answer("c", [guest("z", MAC)], segment="s2")]
    assert _only("fleet.mac_duplicate", three) == [("fleet.mac_duplicate", ("b", "c"), Severity.ERROR)]


def test_shut_off_copies_and_one_hosts_own_duplicates_are_not_fleet_findings() -> None:
    migrated = [answer("a", [guest("x", MAC)], segment="s"), answer("b", [guest("x", MAC, running=False)], segment="s")]
    assert _only("fleet.mac_duplicate", migrated) == []
    one_host = [answer("a", [guest("x", MAC), guest("y", MAC, target="vnet1")], segment="s")]
    assert _only("fleet.mac_duplicate", one_host) == []  # doctor's mac.duplicate on that host says it


def test_an_address_on_two_hosts() -> None:
    m1, m2 = "52:54:00:00:00:11", "52:54:00:00:00:12"
    a = answer("a", [guest("x", m1)], segment="s", addresses={m1: ["10.1.0.5", "fe80::1"]})
    b = answer("b", [guest("y", m2)], segment="s", addresses={m2: ["10.1.0.5/24", "fe80::1"]})
    found = [f for f in fleet_findings([a, b]) if f.finding.check == "fleet.ip_duplicate"]
    assert [(f.hosts, f.finding.evidence_dict()["address"]) for f in found] == [(("a", "b"), "10.1.0.5")]
    shared = [answer(h, [guest(h, m1)], segment="s") for h in ("a", "b")]  # agents list EUI-64 addresses
    assert any(v.raw["addresses"] for v in shared[0].vifs) and _only("fleet.ip_duplicate", shared) == []
    older = [answer("a", [guest("x", m1)], segment="s"), answer("b", [guest("y", m2)], segment="s")]
    assert _only("fleet.ip_duplicate", older) == []  # distinct MACs, no shared address


def test_version_skew_names_the_hosts_off_the_common_version() -> None:
    fleet = [answer(n, [], version=v) for n, v in (("a", "1.2.0"), ("b", "1.2.0"), ("c", "1.1.0"))]
    assert _only("fleet.version_skew", fleet) == [("fleet.version_skew", ("c",), Severity.WARNING)]
    assert _only("fleet.version_skew", fleet[:2]) == []
    older = [*fleet[:2], answer("d", [], old=True)]  # no /api/v1/host: older than any version that has it
    assert _only("fleet.version_skew", older) == [("fleet.version_skew", ("d",), Severity.WARNING)]


def test_every_host_that_did_not_answer_is_one_error() -> None:
    fleet = [answer("a", []), down("b"), down("c", "no answer within 5 s")]
    found = [f for f in fleet_findings(fleet) if f.finding.check == "fleet.host_unreachable"]
    assert [(f.hosts, f.finding.evidence_dict()["error"]) for f in found] == [
        (("b",), "cannot connect: Connection refused"),
        (("c",), "no answer within 5 s"),
    ]
    fix = found[0].finding.fix
    assert fix is not None and fix.argvs == (("curl", "-sS", "--max-time", "5", "http://b.example:8777/healthz"),)


def test_a_vif_from_an_agent_without_addresses_has_none() -> None:
    raw = dict(answer("a", [guest("x", MAC)]).vifs[0].raw)
    del raw["addresses"]  # agents before the addresses work
    assert parse_vif("a", raw).addresses == ()
