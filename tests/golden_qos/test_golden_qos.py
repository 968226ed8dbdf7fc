"""Golden QoS cases: live domain XML through the real parser, tc's objects as the kernel dumps
them (built by tcbuild.py from tc command lines, libvirt's own sequence among them) through the
real rtnetlink parsers, OVSDB's rows as ``ovs-vsctl`` printed them, then ``judge`` -> verdicts
compared with the case's hand-written expectations.

Each ``cases/*/case.json``: ``description``; ``domains`` [{file, state}] (files in domains/);
``links`` [{name, kind}]; ``tc`` [tc command lines, run in order]; optional ``ovs`` and
``ovs_qos`` (the JSON lines of ``read_ovs``'s and ``read_ovs_qos``'s ovs-vsctl queries);
``expected`` [{domain, index, verdict, inbound, outbound, differs?: {direction: [fields]}}].
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.golden_qos.tcbuild import shaping
from vifscope.bind.qos import judge
from vifscope.model import DomainState, HostSnapshot, ObservedLink
from vifscope.model.qos import QosVerdict, VifQos
from vifscope.report.qos import qos_report
from vifscope.sources.libvirt.domxml import parse_domain_xml
from vifscope.sources.ovs import parse_ovs_tables
from vifscope.sources.ovsqos import parse_ovs_qos_tables

CASES = sorted(p for p in (Path(__file__).resolve().parent / "cases").iterdir() if p.is_dir())


def _tables(lines: list[str]) -> list[Any]:
    return [json.loads(line) for line in lines]


def run_case(path: Path) -> tuple[dict[str, Any], tuple[VifQos, ...]]:
    case = json.loads((path / "case.json").read_text())
    vifs = []
    for d in case["domains"]:
        vifs.extend(parse_domain_xml((path / "domains" / d["file"]).read_text(), DomainState(d["state"])))
    links = tuple(
        ObservedLink(x["name"], 10 + i, x["kind"], True, "up", True, 1500) for i, x in enumerate(case["links"])
    )
    ovs = parse_ovs_tables(_tables(case["ovs"])) if "ovs" in case else None
    snap = HostSnapshot(
        "golden", "test:///", datetime(2026, 1, 2, tzinfo=UTC), tuple(vifs), links,
        ovs.ports if ovs else (), ovs.bridges if ovs else (), ovs is not None,
    )  # fmt: skip
    qos = {q.name: q for q in parse_ovs_qos_tables(_tables(case["ovs_qos"]))} if "ovs_qos" in case else {}
    return case, judge(snap, shaping(case["tc"]), qos)


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_golden_qos_case(path: Path) -> None:
    case, got = run_case(path)
    expected = {(e["domain"], e["index"]): e for e in case["expected"]}
    assert sorted(expected) == sorted((q.domain, q.index) for q in got), "every vif has an expectation"
    for q in got:
        want = expected[(q.domain, q.index)]
        seen = {"verdict": q.verdict.value, "inbound": q.inbound.verdict.value, "outbound": q.outbound.verdict.value}
        assert seen == {k: want[k] for k in seen}, q
        differs = {k: list(v) for k, v in (("inbound", q.inbound.differs), ("outbound", q.outbound.differs)) if v}
        assert differs == want.get("differs", {}), q


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_golden_qos_json_contract(path: Path) -> None:
    _case, got = run_case(path)
    doc = qos_report(got, ())
    assert set(doc) >= {"vifs", "source_errors"}
    for v in doc["vifs"]:
        assert set(v) >= {"domain", "mac", "target", "type", "inbound", "outbound", "verdict"}
        for side in ("inbound", "outbound"):
            assert set(v[side]) >= {"declared", "enforced", "verdict"}
            assert v[side]["verdict"] in {x.value for x in QosVerdict}
    assert json.loads(json.dumps(doc)) == doc


def test_libvirt_layout_reads_back_libvirts_own_numbers() -> None:
    """The enforced side is in libvirt's units: what was declared comes back, within tc's rounding."""
    _case, got = run_case(next(p for p in CASES if p.name == "libvirt-layout"))
    full = next(q for q in got if q.domain == "full")
    assert full.inbound.enforced is not None and full.outbound.enforced is not None
    assert (full.inbound.enforced.mechanism, full.inbound.enforced.average, full.inbound.enforced.peak) == (
        "htb",
        1000,
        2000,
    )
    assert full.inbound.enforced.burst == pytest.approx(256, rel=0.01)
    assert (full.outbound.enforced.mechanism, full.outbound.enforced.average) == ("police", 500)
    assert full.outbound.enforced.burst == pytest.approx(500, rel=0.01)
    fast = next(q for q in got if q.domain == "fast")  # 10 Gbit/s: the 64-bit rate attributes
    assert fast.inbound.enforced is not None and fast.inbound.enforced.average == 1_250_000


def test_tc_backend_outbound_is_read_through_the_redirect_to_the_ifb() -> None:
    """The metadata is the declaration; the ifb's htb (found by the tap's mirred target) the cap."""
    _case, got = run_case(next(p for p in CASES if p.name == "vifscope-tc-backend"))
    ok = next(q for q in got if q.domain == "ok")
    assert ok.where == "vifscope-metadata" and ok.outbound.enforced is not None
    assert (ok.outbound.enforced.mechanism, ok.outbound.enforced.average) == ("ifb-htb", 500)
