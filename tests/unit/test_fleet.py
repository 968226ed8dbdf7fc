"""``vifscope fleet``: the inventory, and how agents' answers become one document and an exit
code (answers made by the agents' own report functions: tests/unit/fleetdocs.py)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tests.unit.fleetdocs import answer, down, fleet_host, guest
from vifscope.cli.main import main
from vifscope.fleet.checks import fleet_findings
from vifscope.fleet.inventory import InventoryError, load_inventory, parse_inventory
from vifscope.fleet.merge import VIFS_PATH, doctor_document, doctor_exit, host_answer, status_document, status_exit
from vifscope.model import SourceError
from vifscope.sources.agents import AgentReply

GOOD = """
hosts:
  - name: kvm-a1
    url: http://10.0.0.11:8777
    token_file: /etc/vifscope/fleet-token
    labels: {rack: 3, segment: vlan20}
  - {name: kvm-a2, url: "https://kvm-a2.example/vifscope/", ca_file: /etc/vifscope/ca.pem}
"""


def test_inventory_reads_hosts_labels_and_tokens() -> None:
    inv = parse_inventory(GOOD)
    a1, a2 = inv.hosts
    assert (a1.name, a1.url, a1.token_file) == ("kvm-a1", "http://10.0.0.11:8777/", Path("/etc/vifscope/fleet-token"))
    assert a1.labels == (("rack", "3"), ("segment", "vlan20")) and a1.segment == "vlan20"
    assert (a2.url, a2.token_file, a2.segment) == ("https://kvm-a2.example/vifscope/", None, None)
    assert (a1.ca_file, a2.ca_file) == (None, Path("/etc/vifscope/ca.pem"))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("hosts: [", "not valid YAML"),
        ("[]", "no 'hosts:' list"),
        ("hosts: []", "non-empty list"),
        ("hosts: [kvm-a1]", "hosts[0]: each host must be a mapping"),
        ("hosts: [{name: a, url: 'http://a/', port: 1}]", "hosts[0]: unknown key(s) port"),
        ("hosts: [{url: 'http://a/'}]", "name must be a non-empty string"),
        ("hosts: [{name: a, url: 'ftp://a/'}]", "hosts[0] (a): url 'ftp://a/' is not an http(s) URL"),
        ("hosts: [{name: a, url: 'http://a/?x=1'}]", "query or fragment"),
        ("hosts: [{name: a, url: 'http://a/'}, {name: a, url: 'http://b/'}]", "'a' appears twice"),
        ("hosts: [{name: a, url: 'http://a/', labels: [x]}]", "labels must be a mapping"),
        ("hosts: [{name: a, url: 'http://a/', labels: {segment: yes}}]", "label 'segment'"),
        ("hosts: [{name: a, url: 'http://a/'}]\nagents: 1", "unknown top-level key(s) agents"),
        ("hosts: [{name: a, url: 'https://a/', ca_file: 3}]", "ca_file must be a path"),
    ],
)
def test_inventory_errors_say_where_and_what(text: str, words: str) -> None:
    with pytest.raises(InventoryError, match=None) as err:
        parse_inventory(text, "inv.yaml")
    assert str(err.value).startswith("inv.yaml: ") and words in str(err.value)


def test_an_absent_inventory_is_an_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read") as err:
        load_inventory(tmp_path / "absent.yaml")
    assert err.value.hint


def test_status_document_puts_the_host_on_every_vif_and_keeps_errors_apart() -> None:
    a = answer("a", [guest("web", "52:54:00:00:00:01"), guest("off", "52:54:00:00:00:02", running=False)])
    b = answer("b", [guest("db", "52:54:00:00:00:03")], plugged=False)
    doc = status_document([a, b, down("c")])
    assert sorted((v["host"], v["domain"], v["status"]) for v in doc["vifs"]) == [
        ("a", "off", "inactive"),
        ("a", "web", "bound"),
        ("b", "db", "detached"),
    ]
    assert doc["host_errors"] == [{"host": "c", "error": "cannot connect: Connection refused"}]
    assert [(h["name"], h["answered"], h["status"], h["host_id"]) for h in doc["hosts"]] == [
        ("a", True, "ok", "id-a"),
        ("b", True, "ok", "id-b"),
        ("c", False, "unreachable", None),
    ]
    assert doc["summary"] == {"hosts": 3, "answered": 2, "vifs": {"bound": 1, "inactive": 1, "detached": 1}}
    assert [v["domain"] for v in status_document([a, b], problems=True)["vifs"]] == ["db"]


def test_status_exit_codes() -> None:
    well = answer("a", [guest("web", "52:54:00:00:00:01")])
    broken = answer("b", [guest("db", "52:54:00:00:00:03")], plugged=False)
    blind = answer("n", [guest("x", "52:54:00:00:00:04")], errors=(SourceError("netlink", "no answer", ""),))
    assert status_exit([well]) == 0
    assert status_exit([well, broken]) == 1
    assert status_exit([well, down("c")]) == 1  # a host that does not answer is a fleet problem
    assert status_exit([well, blind]) == 1  # so is one whose agent cannot see its links
    assert status_exit([down("c"), down("d")]) == 3  # nothing to judge


def test_an_answer_of_another_shape_is_that_hosts_error() -> None:
    reply = AgentReply("odd", (("api/v1/host", {"host_id": "x", "version": "9", "status": "ok"}),
                               (VIFS_PATH, {"vifs": [{"mac": "52:54:00:00:00:01"}]})), None, 0.1)  # fmt: skip
    got = host_answer(fleet_host("odd"), reply)
    assert got.error == "unexpected answer: a vif: 'domain' is missing or not text" and got.vifs == ()


def test_doctor_document_tags_host_and_fleet_findings() -> None:
    mac = "52:54:00:00:00:09"
    own = {"check": "vif.detached", "severity": "error", "message": "m", "domain": "web"}
    a = answer("a", [guest("web", mac)], segment="s", findings=[own])
    b = answer("b", [guest("web2", mac)], segment="s", findings=[])
    answers = [a, b, down("c")]
    doc = doctor_document(answers, fleet_findings(answers))
    tagged = {(f["check"], f["host"], tuple(f["hosts"])) for f in doc["findings"]}
    assert tagged == {
        ("vif.detached", "a", ("a",)),
        ("fleet.mac_duplicate", None, ("a", "b")),
        ("fleet.host_unreachable", "c", ("c",)),
    }
    assert doc["summary"] == {"error": 3, "warning": 0, "info": 0}
    assert doctor_exit(answers, doc) == 1
    quiet = [answer("a", [guest("web", "52:54:00:00:00:01")], findings=[])]
    assert doctor_exit(quiet, doctor_document(quiet, fleet_findings(quiet))) == 0


def test_an_agent_older_than_the_host_endpoint_is_still_merged() -> None:
    old = answer("old", [guest("web", "52:54:00:00:00:01")], old=True)
    doc = status_document([old])
    assert (doc["hosts"][0]["status"], doc["hosts"][0]["version"]) == ("ok", None)
    assert [v["host"] for v in doc["vifs"]] == ["old"] and status_exit([old]) == 0


def test_a_token_file_that_cannot_be_used_is_that_hosts_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the command itself: the open token file is refused for its host only; the other
    host is still asked (and refused: nothing listens there); nothing answered: exit 3."""
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123\n")
    os.chmod(token, 0o644)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inv = tmp_path / "fleet.yaml"
    inv.write_text(
        f"hosts:\n  - {{name: a, url: 'http://127.0.0.1:{port}/', token_file: '{token}'}}\n"
        f"  - {{name: b, url: 'http://127.0.0.1:{port}/'}}\n"
    )
    assert main(["fleet", "status", "--json", "--inventory", str(inv), "--timeout", "2"]) == 3
    errors = {e["host"]: e["error"] for e in json.loads(capsys.readouterr().out)["host_errors"]}
    assert errors["a"].startswith("token: ") and "readable by other users" in errors["a"]
    assert errors["b"] == "cannot connect: Connection refused"


def test_a_bad_inventory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "fleet.yaml"
    inv.write_text("hosts: [{name: a, url: 'http://a/', colour: red}]\n")
    assert main(["fleet", "doctor", "--inventory", str(inv)]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) colour" in err and "hint: known keys" in err
