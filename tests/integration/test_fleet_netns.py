"""The issue's test fleet: five "hosts", each its own network namespace with real bridges and
held taps, its own libvirt test-driver node file and a ``vifscope serve`` agent inside it that
the hub reaches over a veth. h4's agent is frozen (SIGSTOP: its kernel still accepts the
connection, nobody answers), h5's is killed; h1 and h2 run a guest with the same MAC, h1 and
h3 have seen the same IPv4 address on their bridges from two different guests. ``fleet
status`` and ``fleet doctor`` must name exactly those, within their timeout."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.fleet_agents import hub_server
from tests.integration.fleet_netns import NET, NetnsHost, host_mac, netns_fleet

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2"),
]

TIMEOUT = 3.0
TOKEN = "vs-fleet-read-0123456789abcdef"
SHARED_MAC = host_mac(1, 1, 1)  # h1's second guest's second vif; h2's takes it over
SHARED_IP = f"{NET}.9.9"  # on h1's bridge for h1's first vif, on h3's for h3's first vif
SEGMENT = "dc1"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, NetnsHost]]]:
    work = tmp_path_factory.mktemp("netns-fleet")
    token = work / "read-token"
    token.write_text(TOKEN + "\n")
    os.chmod(token, 0o600)
    same_as = {2: {host_mac(2, 1, 1): SHARED_MAC}}
    neighbours = {1: [(SHARED_IP, host_mac(1, 0, 0))], 3: [(SHARED_IP, host_mac(3, 0, 0))]}
    with netns_fleet(work, 5, token, same_as, neighbours) as hosts:
        for h in hosts.values():  # over the veth, with the token: every agent has its first snapshot
            assert _get(h.url + "api/v1/vifs")["vifs"]
        os.kill(hosts["h4"].proc.pid, signal.SIGSTOP)
        hosts["h5"].proc.kill()
        hosts["h5"].proc.wait(timeout=30)
        entries = [
            {"name": n, "url": h.url, "token_file": str(token), "labels": {"segment": SEGMENT}}
            for n, h in hosts.items()
        ]
        inv = work / "inventory.yaml"
        inv.write_text(json.dumps({"hosts": entries}))
        yield inv, hosts


def _get(url: str) -> dict[str, Any]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
        return doc


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


def test_the_agents_run_in_their_own_namespaces_on_real_taps(fleet: tuple[Path, dict[str, NetnsHost]]) -> None:
    _, hosts = fleet
    h1 = hosts["h1"]
    assert h1.url == f"http://{NET}.0.11:8777/"
    links = subprocess.run(["ip", "-n", h1.netns, "-o", "link", "show", "type", "tun"], capture_output=True, text=True)
    assert sorted(line.split(":")[1].strip() for line in links.stdout.splitlines()) == sorted(
        v.tap for v in h1.synth.plan.vifs
    )
    root = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert h1.synth.plan.vifs[0].tap + ":" not in root  # the taps are the namespace's, not the hub's


def test_status_names_the_hung_and_the_down_host_and_merges_the_rest(
    fleet: tuple[Path, dict[str, NetnsHost]],
) -> None:
    inv, hosts = fleet
    rc, doc, elapsed = hub(inv, "status")
    assert rc == 1
    assert sorted(e["host"] for e in doc["host_errors"]) == ["h4", "h5"]
    errors = {e["host"]: e["error"] for e in doc["host_errors"]}
    assert "within" in errors["h4"], errors  # hung: the hub gave up on it at its timeout
    assert "within" not in errors["h5"], errors  # down: refused at once
    by_host = {h["name"]: h for h in doc["hosts"]}
    assert {n for n, h in by_host.items() if h["answered"]} == {"h1", "h2", "h3"}
    assert by_host["h3"]["host_id"] == "id-h3"
    got = sorted((v["host"], v["target"], v["mac"], v["status"]) for v in doc["vifs"])
    want = sorted(
        (
            n,
            v.tap,
            SHARED_MAC
            if (n, v.domain[-2:], v.index) == ("h2", "d1", 1)
            else host_mac(int(n[1:]), int(v.domain[-1]), v.index),
            "bound",
        )
        for n in ("h1", "h2", "h3")
        for v in hosts[n].synth.plan.vifs
    )
    assert got == want
    assert elapsed < TIMEOUT + 5, f"the hung host held the hub {elapsed:.1f} s"


def test_doctor_names_exactly_the_duplicates_and_the_unreachable(fleet: tuple[Path, dict[str, NetnsHost]]) -> None:
    inv, _ = fleet
    rc, doc, elapsed = hub(inv, "doctor")
    assert rc == 1
    fleet_level = sorted(
        (f["check"], tuple(f["hosts"]), f["severity"]) for f in doc["findings"] if f["check"].startswith("fleet.")
    )
    assert fleet_level == [
        ("fleet.host_unreachable", ("h4",), "error"),
        ("fleet.host_unreachable", ("h5",), "error"),
        ("fleet.ip_duplicate", ("h1", "h3"), "error"),
        ("fleet.mac_duplicate", ("h1", "h2"), "error"),
    ]
    by_check = {f["check"]: f for f in doc["findings"]}
    assert by_check["fleet.mac_duplicate"]["mac"] == SHARED_MAC
    assert SHARED_IP in by_check["fleet.ip_duplicate"]["message"]
    assert elapsed < TIMEOUT + 8


def test_the_hub_page_api_shows_the_same_fleet(fleet: tuple[Path, dict[str, NetnsHost]], tmp_path: Path) -> None:
    """``serve --fleet`` over the namespaces' agents: the counts per host, and h1's topology
    fetched through the hub over the veth with the read token."""
    inv, hosts = fleet
    with hub_server(tmp_path, inv) as url:
        with urllib.request.urlopen(url + "api/v1/fleet", timeout=60) as resp:
            doc = json.loads(resp.read())
        with urllib.request.urlopen(url + "api/v1/fleet/hosts/h1/topology", timeout=60) as resp:
            topo = json.loads(resp.read())
    states = {h["name"]: (h["status"], h["summary"]) for h in doc["hosts"]}
    assert states == {
        "h1": ("ok", {"bound": 4}),
        "h2": ("ok", {"bound": 4}),
        "h3": ("ok", {"bound": 4}),
        "h4": ("unreachable", {}),
        "h5": ("unreachable", {}),
    }
    counted = {h["name"]: h["findings"].get("error", 0) for h in doc["hosts"]}
    assert all(counted[n] >= 1 for n in hosts)  # a duplicate or an unreachable host names each
    taps = {n["label"] for n in topo["nodes"] if n["kind"] == "vif"}
    assert taps == {v.tap for v in hosts["h1"].synth.plan.vifs}
