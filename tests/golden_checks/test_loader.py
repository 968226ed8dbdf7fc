"""The golden-checks loader must refuse what it would otherwise get silently wrong: a patch path
the base does not have (a typo would create a key no parser reads, and the case would test the
base instead of its fault), a patch nothing applies, an inheriting expected.json that removes a
finding its base does not expect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.golden_checks.loader import ExpectedError, expected_findings, load_case
from tests.golden_checks.patch import PatchError, apply_patch


def _links() -> list[dict[str, Any]]:
    return [
        {"ifname": "br0", "mtu": 1500, "linkinfo": {"info_kind": "bridge", "info_data": {"stp_state": 0}}},
        {"ifname": "tap0", "mtu": 1500, "master": "br0", "linkinfo": {"info_kind": "tun"}},
    ]


@pytest.mark.parametrize(
    ("op", "words"),
    [
        ({"at": "nftables", "append": [{}]}, "no key 'nftables'"),
        ({"where": {"ifname": "br0"}, "set": {"mtuu": 9000}}, "set 'mtuu': no such key"),
        ({"where": {"ifname": "br0"}, "set": {"linkinfo.info_dta.stp_state": 1}}, "no key 'info_dta'"),
        ({"where": {"ifname": "br0"}, "set": {"master": None}}, "set 'master': no such key"),
        ({"where": {"ifname": "br0"}, "set": {"mtu.x": 1}}, "is not an object"),
        ({"where": {"ifnam": "br0"}, "drop": True}, "where 'ifnam': no item has that key"),
        ({"where": {"ifname": "br9"}, "drop": True}, "patch matches nothing"),
        ({"where": {"ifname": "tap0"}, "add": {"master": "br1"}}, "the key exists already"),
        ({"where": {"ifname": "tap0"}, "add": {"linkinfo.info_slave_data.isolated": True}}, "info_slave_data"),
        ({"where": {"ifname": "tap0"}, "sett": {"mtu": 1}}, "unknown patch op key"),
        ({"drop": True}, "drop needs a where"),
    ],
)
def test_a_bad_patch_path_raises(op: dict[str, Any], words: str) -> None:
    with pytest.raises(PatchError, match=words):
        apply_patch(_links(), [op])


def test_good_patches_edit_in_place() -> None:
    doc = apply_patch(
        _links(),
        [
            {"where": {"ifname": "br0"}, "set": {"linkinfo.info_data.stp_state": 1, "mtu": 9000}},
            {"where": {"ifname": "tap0"}, "set": {"master": None}, "add": {"linkinfo.info_slave_kind": "bridge"}},
            {"append": [{"ifname": "up0"}]},
            {"where": {"ifname": "up0"}, "drop": True},
        ],
    )
    assert doc == [
        {"ifname": "br0", "mtu": 9000, "linkinfo": {"info_kind": "bridge", "info_data": {"stp_state": 1}}},
        {"ifname": "tap0", "mtu": 1500, "linkinfo": {"info_kind": "tun", "info_slave_kind": "bridge"}},
    ]


def _case(tmp_path: Path, meta: dict[str, Any], expected: Any = None) -> Path:
    meta = {"description": "t", "taken_at": "2026-11-25T15:40:00+00:00", "exit_code": 1, "base": "lab-baseline"} | meta
    (tmp_path / "case.json").write_text(json.dumps(meta))
    (tmp_path / "expected.json").write_text(json.dumps([] if expected is None else expected))
    return tmp_path


def test_a_bad_path_in_a_case_patch_fails_the_case(tmp_path: Path) -> None:
    bad = {"facts/sysctl.json": [{"set": {"net/ipv4/ip_forwrd": "1"}}]}
    with pytest.raises(PatchError, match="ip_forwrd"):
        load_case(_case(tmp_path, {"patch": bad}))


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        ({"facts/agent.json": [{"append": [{}]}]}, "neither the case nor its base has"),
        ({"facts/nothing.json": "delete"}, "neither the case nor its base has"),
        ({"ovs.json": [{"where": {"x": 1}, "drop": True}]}, "never applied"),
    ],
)
def test_a_patch_nothing_applies_fails_the_case(tmp_path: Path, patch: dict[str, Any], words: str) -> None:
    with pytest.raises(PatchError, match=words):
        load_case(_case(tmp_path, {"patch": patch}))


def _gone(why: str = "a reason", **key: Any) -> dict[str, Any]:
    base = {"check": "ip.no_lease", "severity": "warning", "domain": "vs-d-multi", "subject": None, "why": why}
    return base | key


@pytest.mark.parametrize(
    ("expected", "words"),
    [
        ({"inherit": "healthy-lab", "add": []}, "not the case's base"),
        ({"inherit": "lab-baseline", "remove": [_gone(why="")]}, "removal without a why"),
        ({"inherit": "lab-baseline", "remove": [_gone(domain="vs-d-web1")]}, "does not expect"),
        ({"inherit": "lab-baseline", "remove": [_gone(), _gone()]}, "does not expect"),
        ({"inherit": "lab-baseline", "plus": []}, "unknown key"),
    ],
)
def test_a_wrong_inheritance_fails_the_case(tmp_path: Path, expected: dict[str, Any], words: str) -> None:
    with pytest.raises(ExpectedError, match=words):
        expected_findings(_case(tmp_path, {}, expected))


def test_inheritance_is_base_minus_removed_plus_added(tmp_path: Path) -> None:
    added = {"check": "vif.missing", "severity": "error", "domain": "vs-d-web1", "subject": None}
    got = expected_findings(_case(tmp_path, {}, {"inherit": "lab-baseline", "remove": [_gone()], "add": [added]}))
    base = expected_findings(Path(__file__).resolve().parent / "cases" / "lab-baseline")
    assert len(got) == len(base) and added in got
    assert not any(e["check"] == "ip.no_lease" for e in got) and any(e["check"] == "ip.no_lease" for e in base)
