"""Golden cases: real-shaped inputs (live domain XML, ``ip -j -d link show``, ``ovs-vsctl --format=json``,
network XML) -> the real parsers -> bind() -> verdicts compared with a hand-written expected.json.

See tests/golden/README.md for the layout of a case directory.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.golden.backends import replay_backends
from vifscope.bind.join import bind
from vifscope.model import AddressFacts, DomainState, HostSnapshot, SourceError, VifBinding, VifStatus
from vifscope.report import documents as report
from vifscope.sources.kernel.iproute import parse_neighbors
from vifscope.sources.kernel.links import parse_links
from vifscope.sources.libvirt.domxml import parse_domain_xml
from vifscope.sources.libvirt.guestip import parse_agent_interfaces, parse_lease
from vifscope.sources.libvirt.netxml import parse_network_xml
from vifscope.sources.ovs import parse_ovs_tables

CASES_DIR = Path(__file__).resolve().parent / "cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())
TAKEN_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# The --json contract of issue 2: names later tooling relies on (more may be added, none renamed).
TOP_KEYS = {"host", "uri", "taken_at", "vifs", "source_errors"}
VIF_KEYS = {
    "domain",
    "domain_uuid",
    "domain_state",
    "index",
    "type",
    "mac",
    "model",
    "source",
    "network",
    "bridge",
    "target",
    "link_state",
    "status",
    "problems",
    "detail",
    "observed",
    "addresses",
}
OBSERVED_KEYS = {"present", "kind", "admin_up", "oper_state", "carrier", "master", "lower", "mtu", "ovs_bridge"}


@dataclass(frozen=True)
class Case:
    name: str
    meta: dict[str, Any]
    snap: HostSnapshot
    expected: list[dict[str, Any]]


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _optional(path: Path) -> Any:
    return _json(path) if path.exists() else None


def load_addresses(path: Path) -> AddressFacts:
    """Guest-address sources, each optional: ``leases.json`` ({network: virNetworkGetDHCPLeases
    entries}), ``neigh.json`` (``ip -j neigh show``), ``agent.json`` ({domain:
    virDomainInterfaceAddresses(SRC_AGENT) dict})."""
    leases, neigh, agent = (_optional(path / f) for f in ("leases.json", "neigh.json", "agent.json"))
    return AddressFacts(
        leases=tuple(parse_lease(net, raw) for net, raws in leases.items() for raw in raws) if leases else None,
        neighbors=parse_neighbors(neigh) if neigh is not None else None,
        agent=tuple(a for dom, ifaces in agent.items() for a in parse_agent_interfaces(dom, ifaces)) if agent else None,
    )


def load_case(path: Path) -> Case:
    meta = _json(path / "case.json")
    vifs = []
    for dom in _json(path / "domains.json"):
        text = (path / "domains" / dom["file"]).read_text(encoding="utf-8")
        vifs.extend(parse_domain_xml(text, DomainState(dom["state"])))
    networks = []
    if (path / "networks.json").exists():
        for net in _json(path / "networks.json"):
            text = (path / "networks" / net["file"]).read_text(encoding="utf-8")
            networks.append(
                parse_network_xml(text, active=net["active"], autostart=net["autostart"], leases=net.get("leases"))
            )
    ovs = None
    if (path / "ovs.json").exists():
        lines = (path / "ovs.json").read_text(encoding="utf-8").splitlines()
        ovs = parse_ovs_tables([json.loads(line) for line in lines if line.strip()])
    # A "backends" error is not injected: the replay below produces it (case.json lists it so the
    # report's source_errors can be compared with the case's).
    recorded = [e for e in meta.get("source_errors", []) if e["source"] != "backends"]
    errors = tuple(SourceError(e["source"], e["error"], e.get("hint", "")) for e in recorded)
    links = _json(path / "links.json")
    backends, backend_errors = replay_backends(path, vifs, networks, links, "qemu:///system")
    snap = HostSnapshot(
        host="golden-host",
        uri="qemu:///system",
        taken_at=TAKEN_AT,
        vifs=tuple(vifs),
        links=parse_links(links),
        ovs_ports=ovs.ports if ovs else (),
        ovs_bridges=ovs.bridges if ovs else (),
        ovs_available=ovs is not None,
        networks=tuple(networks),
        errors=(*errors, *backend_errors),
        backends=backends,
        addresses=load_addresses(path),
    )
    return Case(path.name, meta, snap, _json(path / "expected.json"))


def _verdicts(bindings: tuple[VifBinding, ...]) -> list[dict[str, Any]]:
    return [
        {
            "domain": b.vif.domain,
            "index": b.vif.index,
            "status": b.status.value,
            "problems": sorted(p.value for p in b.problems),
        }
        for b in bindings
    ]


def _dig(doc: dict[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        assert isinstance(value, dict) and part in value, f"report has no {dotted!r}"
        value = value[part]
    return value


@pytest.fixture(params=CASES, ids=[p.name for p in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    path: Path = request.param
    return load_case(path)


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_case_layout(path: Path) -> None:
    """Every file of a case is used: no orphan domain/network XML, every expectation well formed."""
    for required in ("case.json", "domains.json", "links.json", "expected.json"):
        assert (path / required).is_file(), f"{path.name}: {required} missing"
    meta = _json(path / "case.json")
    assert meta.get("description"), "say what the case is about"
    assert isinstance(meta.get("exit_code"), int)
    listed = {d["file"] for d in _json(path / "domains.json")}
    assert listed == {p.name for p in (path / "domains").glob("*.xml")}
    if (path / "networks").exists():
        assert {n["file"] for n in _json(path / "networks.json")} == {p.name for p in (path / "networks").glob("*")}
    for exp in _json(path / "expected.json"):
        assert {"domain", "index", "status", "problems"} <= exp.keys()
        assert exp["status"] in {s.value for s in VifStatus}
        assert exp["problems"] == sorted(exp["problems"]), "problems are written sorted"
    if (path / "ovs.json").exists():
        lines = [ln for ln in (path / "ovs.json").read_text(encoding="utf-8").splitlines() if ln.strip()]
        assert len(lines) == 3, "ovs.json is the three tables one ovs-vsctl call prints"
        assert [json.loads(ln)["headings"][1] for ln in lines] == ["ports", "interfaces", "name"]


def test_verdicts(case: Case) -> None:
    bindings = bind(case.snap)
    want = [{k: e[k] for k in ("domain", "index", "status", "problems")} for e in case.expected]
    assert _verdicts(bindings) == want, case.meta["description"]


def test_report_fields(case: Case) -> None:
    """Expected report fields (``report`` in expected.json, dotted keys into the vif dict)."""
    bindings = bind(case.snap)
    doc = report.status_report(case.snap, bindings)
    by_key = {(v["domain"], v["index"]): v for v in doc["vifs"]}
    for exp in case.expected:
        vif = by_key[(exp["domain"], exp["index"])]
        assert vif["status"] == exp["status"]
        assert sorted(vif["problems"]) == exp["problems"]
        for dotted, value in exp.get("report", {}).items():
            assert _dig(vif, dotted) == value, f"{exp['domain']}#{exp['index']} {dotted}"


def test_exit_code(case: Case) -> None:
    code = report.exit_code(case.snap, bind(case.snap))
    assert code == case.meta["exit_code"], case.meta["description"]


def test_json_contract(case: Case) -> None:
    bindings = bind(case.snap)
    doc = report.status_report(case.snap, bindings)
    assert doc.keys() >= TOP_KEYS
    assert datetime.fromisoformat(doc["taken_at"]) == TAKEN_AT
    assert (doc["host"], doc["uri"]) == ("golden-host", "qemu:///system")
    assert len(doc["vifs"]) == len(case.expected)
    for vif in doc["vifs"]:
        missing = VIF_KEYS - vif.keys()
        assert not missing, f"vif dict lacks {sorted(missing)}"
        missing = OBSERVED_KEYS - vif["observed"].keys()
        assert not missing, f"observed dict lacks {sorted(missing)}"
        assert isinstance(vif["index"], int)
        assert vif["status"] in {s.value for s in VifStatus}
        assert vif["domain_state"] in {s.value for s in DomainState}
        assert vif["link_state"] in ("up", "down")
        assert isinstance(vif["problems"], list) and all(isinstance(p, str) for p in vif["problems"])
        assert isinstance(vif["detail"], str) and vif["detail"], "every verdict says why"
        assert isinstance(vif["observed"]["present"], bool)
    for err in doc["source_errors"]:
        assert {"source", "error"} <= err.keys()
    assert [e["source"] for e in doc["source_errors"]] == [e["source"] for e in case.meta.get("source_errors", [])]
    assert Counter(v["status"] for v in doc["vifs"]) == Counter(doc["summary"])
    # Serialisable as the CLI writes it, non-ASCII kept.
    assert json.loads(json.dumps(doc, ensure_ascii=False)) == doc
