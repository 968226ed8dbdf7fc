"""``vifscope fleet`` against real agents: ``vifscope serve`` processes, each its own "host" on
a libvirt test-driver node file, plus one agent frozen with SIGSTOP (accepts connections,
never answers) and one URL where nothing listens. The hub must name exactly those two, find
the MAC two hosts of one segment share, and finish within its timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.fleet_agents import Agent, Guest, agent, agents, closed_port_url, self_signed

pytestmark = pytest.mark.integration

TIMEOUT = 3.0
SHARED_MAC = "52:54:00:f1:00:99"
HOSTS: dict[str, list[Guest]] = {
    "h1": [Guest("vs-f-web1", ("52:54:00:f1:00:01", SHARED_MAC)), Guest("vs-f-off1", ("52:54:00:f1:00:02",), False)],
    "h2": [Guest("vs-f-web2", (SHARED_MAC.upper(),)), Guest("vs-f-db2", ("52:54:00:f1:00:03",))],
    "h3": [Guest("vs-f-web3", ("52:54:00:f1:00:04",)), Guest("vs-f-off3", ("52:54:00:f1:00:02",), False)],
    "hung": [Guest("vs-f-hung", ("52:54:00:f1:00:05",))],
}
SEGMENTS = {"h1": "s1", "h2": "s1", "h3": "s2", "hung": "s1"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Agent]]]:
    work = tmp_path_factory.mktemp("fleet")
    with agents(work, HOSTS) as running:
        for a in running.values():  # every agent has a first snapshot before the hub asks
            assert _get(a.url + "api/v1/vifs")[0] == 200
        os.kill(running["hung"].proc.pid, signal.SIGSTOP)
        entries = [
            {"name": n, "url": a.url, "labels": {"segment": SEGMENTS[n], "rack": "r1"}} for n, a in running.items()
        ]
        entries.append({"name": "down", "url": closed_port_url()})
        inv = work / "inventory.yaml"
        inv.write_text(json.dumps({"hosts": entries}))  # YAML is a superset of JSON
        yield inv, running


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def hub(inv: Path, *args: str) -> tuple[int, dict[str, Any], float]:
    cmd = [
        sys.executable,
        "-m",
        "vifscope",
        "fleet",
        *args,
        "--json",
        "--inventory",
        str(inv),
        "--timeout",
        str(TIMEOUT),
    ]
    start = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.monotonic() - start
    assert res.stdout, res.stderr
    return res.returncode, json.loads(res.stdout), elapsed


def test_status_merges_the_answering_hosts_and_names_the_hung_and_the_down(
    fleet: tuple[Path, dict[str, Agent]],
) -> None:
    inv, _ = fleet
    rc, doc, elapsed = hub(inv, "status")
    assert rc == 1  # missing vifs, and two hosts did not answer
    assert {e["host"] for e in doc["host_errors"]} == {"hung", "down"}
    by_host = {h["name"]: h for h in doc["hosts"]}
    assert [h["name"] for h in doc["hosts"]] == ["h1", "h2", "h3", "hung", "down"]  # inventory order
    assert {n for n, h in by_host.items() if h["answered"]} == {"h1", "h2", "h3"}
    assert by_host["h2"]["host_id"] == "id-h2" and by_host["down"]["status"] == "unreachable"
    assert "within" in dict((e["host"], e["error"]) for e in doc["host_errors"])["hung"]
    got = sorted((v["host"], v["domain"], v["status"]) for v in doc["vifs"])
    want = sorted(
        (h, g.name, "missing" if g.running else "inactive")
        for h in ("h1", "h2", "h3")
        for g in HOSTS[h]
        for _ in g.macs
    )
    assert got == want
    assert elapsed < TIMEOUT + 5, f"the hung host held the hub {elapsed:.1f} s"


def test_status_problems_keeps_only_faults(fleet: tuple[Path, dict[str, Agent]]) -> None:
    _, doc, _ = hub(fleet[0], "status", "--problems")
    assert doc["vifs"] and all(v["status"] == "missing" for v in doc["vifs"])


def test_doctor_finds_the_shared_mac_and_exactly_the_unreachable_hosts(fleet: tuple[Path, dict[str, Agent]]) -> None:
    inv, _ = fleet
    rc, doc, elapsed = hub(inv, "doctor")
    assert rc == 1
    fleet_level = [f for f in doc["findings"] if f["check"].startswith("fleet.")]
    dup = [f for f in fleet_level if f["check"] == "fleet.mac_duplicate"]
    assert [(f["mac"], f["hosts"], f["severity"], f["host"]) for f in dup] == [
        (SHARED_MAC, ["h1", "h2"], "error", None)
    ]
    # 52:54:00:f1:00:02 is on h1 and h3 too, but only in shut-off definitions: not on the wire
    gone = sorted(f["host"] for f in fleet_level if f["check"] == "fleet.host_unreachable")
    assert gone == ["down", "hung"]
    assert not [f for f in fleet_level if f["check"] == "fleet.version_skew"]
    # the agents report addresses; the shared MAC's EUI-64 address is the MAC's finding, not an IP's
    assert any(v.get("addresses") for v in hub(inv, "status")[1]["vifs"])
    assert not [f for f in fleet_level if f["check"] == "fleet.ip_duplicate"]
    per_host = {f["host"] for f in doc["findings"] if not f["check"].startswith("fleet.")}
    assert per_host == {"h1", "h2", "h3"}  # each agent's own findings, with its host
    assert elapsed < TIMEOUT + 5


def test_an_unchanged_host_answers_304_to_its_etag(fleet: tuple[Path, dict[str, Agent]]) -> None:
    url = fleet[1]["h1"].url + "api/v1/vifs"
    status, headers, body = _get(url)
    assert status == 200 and headers["etag"].startswith('W/"') and json.loads(body)["vifs"]
    time.sleep(1.2)  # past the agent's interval: the next answer is from a new snapshot
    status, again, body = _get(url, {"If-None-Match": headers["etag"]})
    assert (status, again["etag"], body) == (304, headers["etag"], b"")
    assert _get(url, {"If-None-Match": 'W/"stale"'})[0] == 200


def test_the_host_document_names_the_agent(fleet: tuple[Path, dict[str, Agent]]) -> None:
    status, _, body = _get(fleet[1]["h3"].url + "api/v1/host")
    doc = json.loads(body)
    assert status == 200 and (doc["host_id"], doc["host_id_source"], doc["vifs"]) == ("id-h3", "flag", 2)


def test_an_https_agent_is_checked_against_the_inventorys_ca(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with agent(tmp_path, "tls", HOSTS["h3"], "--tls-cert", str(cert), "--tls-key", str(key)) as a:
        assert a.url.startswith("https://127.0.0.1:")
        inv = tmp_path / "inventory.yaml"
        hosts = [{"name": "trusted", "url": a.url, "ca_file": str(cert)}, {"name": "untrusted", "url": a.url}]
        inv.write_text(json.dumps({"hosts": hosts}))
        rc, doc, _ = hub(inv, "status")
    answered = [(h["name"], h["answered"]) for h in doc["hosts"]]
    assert answered == [("trusted", True), ("untrusted", False)], doc["host_errors"]
    assert "CERTIFICATE_VERIFY_FAILED" in doc["host_errors"][0]["error"] and rc == 1
    assert {v["host"] for v in doc["vifs"]} == {"trusted"}


def test_serve_refuses_half_a_tls_setting(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    cmd = [sys.executable, "-m", "vifscope", "-c", "test:///default", "serve", "--listen", "127.0.0.1:0"]
    res = subprocess.run([*cmd, "--tls-cert", str(cert)], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2 and "both a certificate and its key" in res.stderr and "hint:" in res.stderr
    res = subprocess.run(
        [*cmd, "--tls-cert", str(cert), "--tls-key", str(cert)], capture_output=True, text=True, timeout=60, check=False
    )
    assert res.returncode == 2 and "not usable" in res.stderr


def test_an_agent_with_a_read_token_answers_the_hub_that_sends_it(tmp_path: Path) -> None:
    token = tmp_path / "read-token"
    token.write_text("vs-f-read-0123456789abcdef\n")
    os.chmod(token, 0o600)
    with agent(tmp_path, "guarded", HOSTS["h3"], "--read-token-file", str(token)) as a:
        inv = tmp_path / "inventory.yaml"
        hosts = [{"name": "with", "url": a.url, "token_file": str(token)}, {"name": "without", "url": a.url}]
        inv.write_text(json.dumps({"hosts": hosts}))
        rc, doc, _ = hub(inv, "doctor")
        assert _get(a.url + "healthz")[0] in (200, 503)  # open: liveness probes carry no token
    [(host, error)] = [(e["host"], e["error"]) for e in doc["host_errors"]]
    assert host == "without" and error.endswith(": HTTP 401: this server's reads need a bearer token"), error
    assert {f["host"] for f in doc["findings"] if not f["check"].startswith("fleet.")} == {"with"}
    assert rc == 1
