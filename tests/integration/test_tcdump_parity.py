"""The rtnetlink qdisc and neighbour readers give what ``tc -j qdisc show`` and ``ip -j neigh
show`` give, on real qdiscs and neighbour entries in a private netns: a root qdisc with a
handle and an ingress qdisc on one link, a shaping root (tbf) on another, noqueue bridges
and loopback, and IPv4 / IPv6 neighbours in several NUD states, one without a link-layer
address.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

BATCH = """\
link add vs-qbr type bridge
link add vs-q0 type veth peer name vs-q1
link set vs-q0 up
link set vs-q1 up
link set vs-qbr up
link set lo up
addr add 10.98.0.1/24 dev vs-q0
addr add fd00:98::1/64 dev vs-q0 nodad
neigh add 10.98.0.2 lladdr 52:54:00:aa:bb:01 dev vs-q0 nud permanent
neigh add 10.98.0.3 lladdr 52:54:00:AA:BB:02 dev vs-q0 nud stale
neigh add 10.98.0.4 dev vs-q0 nud failed
neigh add fd00:98::2 lladdr 52:54:00:aa:bb:03 dev vs-q0 nud permanent
"""
TC = [
    "qdisc add dev vs-q0 root handle 8001: pfifo limit 100",
    "qdisc add dev vs-q0 ingress",
    "qdisc add dev vs-q1 root tbf rate 1mbit burst 32kbit latency 400ms",
]

READ = """
import json, subprocess
from vifscope.sources.kernel import iproute
from vifscope.sources.kernel import tcdump
def rows(items):
    return sorted([list(map(str, x.__dict__.values())) for x in items])
print(json.dumps([rows(tcdump.read_qdiscs()), rows(iproute.read_qdiscs()),
                  rows(tcdump.read_neighbors()), rows(iproute.read_neighbors())]))
"""


@pytest.fixture
def netns():  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    ns = f"vs-tq{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=BATCH, text=True, check=True)
        for line in TC:
            subprocess.run(["ip", "netns", "exec", ns, "tc", *line.split()], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_qdiscs_and_neighbours_read_the_same_as_tc_and_ip(netns: str) -> None:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", READ], capture_output=True, text=True, check=True
    ).stdout
    raw_q, tc_q, raw_n, ip_n = json.loads(out)
    assert raw_q == tc_q
    assert ["vs-q0", "pfifo", "8001:", "True", "False"] in raw_q
    assert ["vs-q0", "ingress", "ffff:", "False", "True"] in raw_q
    assert any(r[:2] == ["vs-q1", "tbf"] and r[3:] == ["True", "False"] for r in raw_q)  # kernel-chosen handle
    assert any(r[:2] == ["vs-qbr", "noqueue"] for r in raw_q)
    assert raw_n == ip_n
    assert ["vs-q0", "10.98.0.2", "52:54:00:aa:bb:01", "PERMANENT"] in raw_n
    assert ["vs-q0", "10.98.0.3", "52:54:00:aa:bb:02", "STALE"] in raw_n  # lower-cased like ip's
    assert ["vs-q0", "10.98.0.4", "None", "FAILED"] in raw_n  # no link-layer address
    assert ["vs-q0", "fd00:98::2", "52:54:00:aa:bb:03", "PERMANENT"] in raw_n
