"""``vifscope flows --inventory``: peers on other fleet hosts named ``host/domain``, for real.

This host is the flows test host (vifscope.lab.flowhost: two netns guests behind veth taps of
two test-driver domains); the fleet is two netns "hosts" of tests.integration.fleet_netns, each
with a ``vifscope serve`` agent, reached from the flows host over a veth on the fleet's bridge;
a third inventory entry has no agent (connection refused). Guest 1 sends real frames (ping) to:
- guest 2, a vif of this host: named by its MAC, plainly (``b``);
- an address h2's bridge has seen from h2's first vif: ``h2/<domain>`` by address;
- an unknown address behind the MAC of h2's second domain's vif: ``h2/<domain>`` by MAC;
- an unknown address behind a MAC both h1 and h2 report: not named, both candidates listed.
The host without an agent is one ``fleet`` source error; flows exits 0."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.fleet_netns import NET, PREFIX, NetnsHost, host_mac, netns_fleet
from vifscope.lab.flowhost import FlowHost, flow_host

pytestmark = pytest.mark.integration
P = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
TOKEN = "vs-flows-fleet-0123456789abcdef"
ADDR_H2 = f"{NET}.41.9"  # h2's bridge has seen it from h2's d0 nic 0
BY_MAC, AMBIGUOUS = f"{NET}.41.20", f"{NET}.41.21"  # addresses nobody reports
SHARED_MAC = host_mac(1, 1, 1)  # h1's d1 nic 1; h2's d1 nic 1 takes it over


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[FlowHost, dict[str, NetnsHost], Path]]:
    if os.geteuid() != 0:
        pytest.fail("needs root (netns, veth, BPF)")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    os.chmod(token, 0o600)
    same_as = {2: {host_mac(2, 1, 1): SHARED_MAC}}
    neighbours = {2: [(ADDR_H2, host_mac(2, 0, 0))]}
    with netns_fleet(tmp_path, 2, token, same_as, neighbours) as fleet, flow_host(tmp_path, P, NET) as h:
        # the flows host's way to the agents: a veth onto the fleet's bridge
        outer = f"{P}vf"
        subprocess.run(["ip", "link", "del", outer], capture_output=True)
        try:
            _ip("link", "add", outer, "type", "veth", "peer", "name", "fleet0", "netns", h.ns)
            _ip("link", "set", outer, "master", f"{PREFIX}br", "up")  # fleet_netns's bridge
            _ip("-n", h.ns, "addr", "add", f"{NET}.0.5/24", "dev", "fleet0")
            _ip("-n", h.ns, "link", "set", "fleet0", "up")
            entries = [{"name": n, "url": f.url, "token_file": str(token)} for n, f in fleet.items()]
            entries.append({"name": "h9", "url": "http://127.0.0.1:9/"})
            inv = tmp_path / "inventory.yaml"
            inv.write_text(json.dumps({"hosts": entries}))
            yield h, fleet, inv
        finally:
            subprocess.run(["ip", "link", "del", outer], capture_output=True)


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


def _send(h: FlowHost, address: str, mac: str | None) -> None:
    """Real ICMP frames from guest 1 to ``address`` (at ``mac``: a static neighbour, no reply needed)."""
    if mac is not None:
        h.in_guest(0, "ip", "neigh", "replace", address, "lladdr", mac, "dev", "eth0", "nud", "permanent")
    h.in_guest(0, "ping", "-c", "2", "-i", "0.2", "-W", "1", address)


def test_peers_on_other_fleet_hosts_are_named_host_domain(setup: tuple[FlowHost, dict[str, NetnsHost], Path]) -> None:
    h, fleet, inv = setup
    argv = h.vifscope_argv("flows", "--json", "--interval", "5", "--inventory", str(inv), "--fleet-timeout", "5")
    proc = subprocess.Popen(argv, env=h.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("flows: collecting"):
            break
    _send(h, h.addrs[1], None)
    _send(h, ADDR_H2, host_mac(2, 0, 0))
    _send(h, BY_MAC, host_mac(2, 1, 0))
    _send(h, AMBIGUOUS, SHARED_MAC)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc: dict[str, Any] = json.loads(out)
    talkers = {t["key"]: t for v in doc["vifs"] if v["domain"] == h.domains[0] for t in v["talkers"]}
    assert talkers.keys() >= {h.addrs[1], ADDR_H2, BY_MAC, AMBIGUOUS}, sorted(talkers)
    assert talkers[h.addrs[1]]["peer"] == h.domains[1]  # this host's: the plain name
    assert talkers[h.addrs[1]]["peer_vif"]["host"] is None
    d0, d1 = (f"{fleet['h2'].netns}d{d}" for d in (0, 1))
    assert talkers[ADDR_H2]["peer"] == f"h2/{d0}"
    assert talkers[ADDR_H2]["peer_vif"] == {"host": "h2", "domain": d0, "mac": host_mac(2, 0, 0)}
    assert talkers[BY_MAC]["peer"] == f"h2/{d1}"
    assert talkers[AMBIGUOUS]["peer"] is None
    cands = sorted((c["host"], c["domain"]) for c in talkers[AMBIGUOUS]["peer_candidates"])
    assert cands == [("h1", f"{fleet['h1'].netns}d1"), ("h2", d1)]
    assert talkers[AMBIGUOUS]["out"]["packets"] == 2
    errors = [e for e in doc["source_errors"] if e["source"] == "fleet"]
    assert len(errors) == 1 and errors[0]["error"].startswith("h9: cannot connect"), doc["source_errors"]
