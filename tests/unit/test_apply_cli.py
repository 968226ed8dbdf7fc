"""``vifscope apply`` / ``export`` front ends against libvirt's test driver (no daemon, no
change made: ``--plan`` only): exit codes, the JSON documents, the shipped schema, and the
round trip export → apply --plan on that driver's ``default`` NAT network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from vifscope.cli import main as cli

TEST_URI = "test:///default"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def go(*argv: str) -> tuple[int, str, str]:
        code = cli.main(["-c", TEST_URI, *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return go


def test_schema_is_printed_and_is_a_valid_json_schema(run: Any) -> None:
    code, out, _ = run("apply", "--schema")
    assert code == 0
    jsonschema.Draft202012Validator.check_schema(json.loads(out))


def test_plan_of_a_new_network_exits_1_with_the_exact_steps(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("networks:\n  - {name: t1, bridge: vsap-t1, ipv4: {address: 10.9.0.1/24}, autostart: false}\n")
    code, out, _ = run("apply", str(path), "--check", "--json")
    assert code == 1
    doc = json.loads(out)
    [change] = doc["changes"]
    assert (change["kind"], change["name"], change["op"], change["what"]) == (
        "network",
        "t1",
        "create",
        ["define", "start"],
    )
    assert [s.get("command") for s in change["steps"]][1:] == [
        f"virsh -c {TEST_URI} net-define /run/vifscope/apply/t1.xml",
        f"virsh -c {TEST_URI} net-start t1",
    ]
    assert '<ip address="10.9.0.1" prefix="24" />' in change["steps"][0]["content"]
    assert doc["summary"] == {"changes": 1, "steps": 3}


def test_export_round_trip_plans_nothing(run: Any, tmp_path: Path) -> None:
    code, out, _ = run("export")
    assert code == 0
    net = next(n for n in yaml.safe_load(out)["networks"] if n["name"] == "default")
    assert net == {
        "name": "default",
        "mode": "nat",
        "bridge": "virbr0",
        "ipv4": {"address": "192.168.122.1/24", "dhcp": ["192.168.122.2", "192.168.122.254"]},
        "autostart": False,
    }
    exported = yaml.safe_load(out)
    # the test driver's guest "test" declares a NIC no real tap backs: the plan says so
    assert exported["domains"]["test"]["interfaces"][0]["network"] == "default"
    path = tmp_path / "exported.yaml"
    path.write_text(out)
    code, out, _ = run("apply", str(path), "--plan")
    assert code == 1 and out.startswith("refused: domain test: NIC ")
    del exported["domains"]
    path.write_text(yaml.safe_dump(exported))
    code, out, _ = run("apply", str(path), "--plan")
    assert (code, out.strip()) == (0, "no change: the host is as the file says")


def test_an_invalid_file_exits_2_with_one_line_and_a_hint(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("networks:\n  - {name: n, mode: wormhole}\n")
    code, out, _ = run("apply", str(path), "--plan", "--json")
    assert code == 2
    doc = json.loads(out)
    assert doc["error"].startswith(f"{path}: networks[0].mode: 'wormhole' is not one of")
    assert doc["hint"] == "see 'vifscope apply --schema' for the format"


def test_a_file_naming_a_guest_that_does_not_exist_is_refused(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("domains:\n  nosuch:\n    interfaces:\n      - {mac: '52:54:00:00:00:01', network: default}\n")
    code, out, _ = run("apply", str(path), "--plan")
    assert code == 1
    assert "refused: domain nosuch is not defined" in out
