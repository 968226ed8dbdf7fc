"""Root causes over the golden cases: which finding follows from which (checks/causes.py).

The cascades are the ones a KVM admin sees when a network is destroyed or a bridge deleted
under running guests; every other case must link nothing it should not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.golden_checks.loader import load_case
from vifscope.bind.join import bind
from vifscope.checks import evaluate
from vifscope.report.doctor_tables import summary_line
from vifscope.report.findings import doctor_report

CASES_DIR = Path(__file__).resolve().parent / "cases"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if p.is_dir())


def _doc(name: str) -> dict[str, Any]:
    case = load_case(CASES_DIR / name)
    bindings = bind(case.snap)
    return doctor_report(case.snap, evaluate(case.snap, bindings), bindings)


def _links(doc: dict[str, Any]) -> set[tuple[str, str | None, str, str | None]]:
    return {
        (f["check"], f["domain"], f["caused_by"]["check"], f["caused_by"]["subject"])
        for f in doc["findings"]
        if f["caused_by"]
    }


def test_destroyed_network_is_the_root_of_its_guests_bridge_and_detach_findings() -> None:
    doc = _doc("network-inactive")
    root = ("network.inactive", "vs-d-iso")
    assert _links(doc) == {
        ("bridge.missing", "vs-d-db1", *root),
        ("bridge.missing", "vs-d-multi", *root),
        ("vif.detached", "vs-d-db1", *root),
        ("vif.detached", "vs-d-multi", *root),
    }
    assert doc["root_causes"] == len(doc["findings"]) - 4
    assert "4 follow from the others" in summary_line(doc)


def test_network_without_its_bridge_is_the_root_too() -> None:
    links = _links(_doc("network-bridge-missing"))
    assert {cause for *_, cause in links} == {"vs-d-iso"}
    assert {check for check, *_ in links} == {"bridge.missing", "vif.detached"}


def test_deleted_plain_bridge_roots_only_the_vifs_it_detached() -> None:
    doc = _doc("bridge-missing")
    links = _links(doc)
    # The bridge.missing findings themselves follow from nothing (no libvirt network owns br0);
    # vs-d-broken's vif was detached already in the baseline, and with br0 gone it has a root too.
    assert links == {
        ("vif.detached", "vs-d-broken", "bridge.missing", "vs-d-br0"),
        ("vif.detached", "vs-d-multi", "bridge.missing", "vs-d-br0"),
        ("vif.detached", "vs-d-web1", "bridge.missing", "vs-d-br0"),
    }
    detached = [f for f in doc["findings"] if f["check"] == "vif.detached"]
    for f in detached:  # each points at the bridge.missing of its own vif, not another guest's
        assert (f["caused_by"]["domain"], f["caused_by"]["mac"]) == (f["domain"], f["mac"])


def test_qos_not_in_force_follows_from_the_kernel_that_cannot_run_it() -> None:
    doc = _doc("perf-tap-queue-and-qdisc")
    missing = [f for f in doc["findings"] if f["check"] == "qos.not_enforced"]
    assert missing
    for f in missing:  # the kernel finding of the same vif
        assert f["caused_by"] == {"check": "qos.kernel_unsupported", "domain": f["domain"], "mac": f["mac"],
                                  "subject": None}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_every_link_points_at_a_root_present_in_the_document(name: str) -> None:
    doc = _doc(name)
    by_key = {(f["check"], f["domain"], f["mac"], f["subject"]): f for f in doc["findings"]}
    for f in doc["findings"]:
        ref = f["caused_by"]
        if ref is None:
            continue
        root = by_key[(ref["check"], ref["domain"], ref["mac"], ref["subject"])]
        assert root["caused_by"] is None  # links go straight to the root, never to a follower
    assert doc["root_causes"] == sum(f["caused_by"] is None for f in doc["findings"])


def test_healthy_lab_links_nothing() -> None:
    assert _links(_doc("healthy-lab")) == set()
