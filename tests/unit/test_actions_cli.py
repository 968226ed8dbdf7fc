"""The front-end glue of the actions layer and the probe on golden snapshots: dry runs, refusals,
exit codes, JSON shape, and the probe's pure parts (hops, addresses, diagnosis).

Nothing here changes the host: only dry runs and refusals (which stop before any step) run.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.golden.test_golden import CASES_DIR, load_case
from vifscope.bind.join import bind
from vifscope.cli.fix import run_fix
from vifscope.cli.probe import diagnose, run_probe
from vifscope.model import HostSnapshot, VifBinding
from vifscope.probe.hops import Hop, VifProbe, _candidates, bridge_hop, find_address


def snap(name: str) -> HostSnapshot:
    return load_case(CASES_DIR / name).snap


def fix_args(**kw: Any) -> argparse.Namespace:
    base = {
        "connect": None,
        "json": True,
        "yes": False,
        "dry_run": True,
        "fix_host": False,
        "fix_link_down": False,
        "audit_log": None,
        "domain": None,
    }
    return argparse.Namespace(**{**base, **kw})


def fix(s: HostSnapshot, capsys: pytest.CaptureFixture[str], **kw: Any) -> tuple[int, str, str]:
    rc = run_fix(fix_args(**kw), s, bind(s), ())
    out, err = capsys.readouterr()
    return rc, out, err


def test_dry_run_json_is_the_plan_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = fix(snap("tap-detached"), capsys)
    doc = json.loads(out)
    assert rc == 1
    assert doc["result"] == "dry-run" and doc["run"] is None
    assert doc["plan"]["actions"] == [
        {
            "kind": "attach",
            "target": "vs-web-0",
            "description": "plug vs-web-0 of vs-web into bridge vs-br0",
            "reason": "detached",
            "domain": "vs-web",
            "mac": "52:54:00:10:00:01",
            "commands": ["ip link set dev vs-web-0 master vs-br0"],
            "undo": ["ip link set dev vs-web-0 nomaster"],
            "promises": ["vs-web-0 is a port of vs-br0"],
        }
    ]
    assert doc["results"] == [] and doc["source_errors"] == []


def test_human_dry_run_shows_commands_and_what_is_left_alone(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = fix(snap("libvirt-link-state-down"), capsys, json=False)
    assert rc == 1
    assert "left alone: vs-web-0 (link_state_down)" in out
    rc, out, _ = fix(snap("tap-misbound"), capsys, json=False)
    assert "ip link set dev vs-web-0 master vs-br0" in out and "master vs-br1" in out


def test_healthy_host_has_nothing_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = fix(snap("linux-bridge-bound"), capsys, dry_run=False, yes=True)
    assert rc == 0
    assert json.loads(out)["result"] == "nothing-to-do"


def test_domain_filter(capsys: pytest.CaptureFixture[str]) -> None:
    s = snap("two-domains")
    rc, out, _ = fix(s, capsys, domain=["vs-a"])
    assert (rc, json.loads(out)["plan"]["actions"]) == (0, [])
    rc, out, _ = fix(s, capsys, domain=["vs-b"])
    assert rc == 1
    assert [a["domain"] for a in json.loads(out)["plan"]["actions"]] == ["vs-b"]


def test_remote_uri_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = fix(replace(snap("tap-detached"), uri="qemu+ssh://root@h2/system"), capsys, dry_run=False)
    assert rc == 2 and out == ""
    assert "qemu+ssh://root@h2/system" in err and "hint:" in err


def test_unreadable_kernel_side_is_refused_with_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = fix(snap("netlink-unavailable"), capsys)
    assert rc == 3 and "error:" in err


def test_unwritable_audit_log_stops_before_any_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    rc, out, err = fix(snap("tap-detached"), capsys, dry_run=False, yes=True, audit_log=str(tmp_path / "file" / "a"))
    assert rc == 3 and out == ""
    assert "cannot write the audit log" in err


# --- the probe's pure parts ------------------------------------------------------------------


def binding(case: str, domain: str, index: int = 0) -> tuple[HostSnapshot, VifBinding]:
    s = snap(case)
    return s, next(b for b in bind(s) if (b.vif.domain, b.vif.index) == (domain, index))


def test_bridge_hop() -> None:
    assert bridge_hop(*reversed(binding("linux-bridge-bound", "vs-web"))).ok is True  # type: ignore[arg-type]
    s, b = binding("bridge-admin-down", "vs-web")
    assert bridge_hop(b, s) == Hop("bridge", False, "bridge vs-br0 is admin down")
    s, b = binding("bridge-missing", "vs-web")
    assert bridge_hop(b, s).ok is False
    s, b = binding("ovs-removed", "vs-o")
    assert bridge_hop(b, s) == Hop("bridge", True, "OVS bridge vs-ovs0 exists")


def test_probe_address_is_taken_from_the_top_of_the_subnet_avoiding_the_networks_own() -> None:
    s, b = binding("network-bridge-resolution", "vs-n")
    given = find_address(b, s.uri, "10.77.5.130")
    assert given is not None and (given.ip, given.prefix, given.source) == ("10.77.5.130", 24, "option")
    assert list(_candidates(given, b))[:2] == ["10.77.5.254", "10.77.5.253"]
    # An address outside this vif's network is meant for another vif of the domain.
    assert find_address(b, "test:///default", "192.0.2.9/24") is None


def test_diagnosis_blames_the_binding_when_arp_fails_on_a_detached_vif() -> None:
    _, b = binding("tap-detached", "vs-web")
    hops = (Hop("bridge", True, ""), Hop("probe-port", True, ""), Hop("address", True, ""), Hop("arp", False, ""))
    text = diagnose(VifProbe(b, hops))
    assert "detached" in text and "--fix" in text
    _, b = binding("linux-bridge-bound", "vs-web")
    assert "filter" in diagnose(VifProbe(b, (*hops[:3], Hop("arp", True, ""), Hop("icmp", False, ""))))


@pytest.mark.parametrize(
    ("case", "domain", "address", "code", "words"),
    [
        ("linux-bridge-bound", "vs-nope", None, 2, "no domain vs-nope"),
        ("direct-bound", "vs-m", None, 2, "no running bridge or network vif"),
        ("domain-states", "vs-crash", None, 2, "no running bridge or network vif"),
        ("netlink-unavailable", "vs-web", None, 3, "error:"),
        ("linux-bridge-bound", "vs-web", "fe80::1", 2, "not an IPv4 address"),
        ("linux-bridge-bound", "vs-web", "10.0.0.300", 2, "not an IPv4 address"),
    ],
)
def test_probe_refusals(
    case: str, domain: str, address: str | None, code: int, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s = snap(case)
    args = argparse.Namespace(connect=None, json=True, probe_domain=domain, address=address)
    rc = run_probe(args, s, bind(s))
    _, err = capsys.readouterr()
    assert rc == code and words in err
