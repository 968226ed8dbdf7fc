"""DSCP marking in vifscope's nft table, with real packets: a sender namespace behind a veth
whose host end plays the tap, a bridge, and a receiver namespace whose own nft ruleset (its
netns, not the host's) counts packets by DSCP. Before the mark nothing arrives as EF; after
it IPv4 and IPv6 pings arrive as EF (46); after --clear they arrive unmarked again, and the
table is gone."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from vifscope.actions.qosdscp import carry_out
from vifscope.model.qosdscp import DSCP_TABLE
from vifscope.sources.kernel.nftdscp import read_dscp_marks, run_argv

P = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78")
PROBE = (
    "add table inet probe",
    "add chain inet probe c { type filter hook input priority 0 ; }",
    "add rule inet probe c ip dscp 46 counter",
    "add rule inet probe c ip6 dscp 46 counter",
)


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=check).stdout


@dataclass(frozen=True)
class Rig:
    tap: str
    sender: str
    receiver: str
    v4: str
    v6: str


@pytest.fixture
def rig() -> Iterator[Rig]:
    if os.geteuid() != 0:
        pytest.fail("needs root (veths, namespaces, nft)")
    br, tap, up = f"{P}dbr", f"{P}dtap", f"{P}dup"
    r = Rig(tap, f"{P}dsnd", f"{P}drcv", f"{NET}.8.2", "fd00:93:8::2")
    try:
        sh("ip", "link", "add", br, "type", "bridge")
        for host, ns, addr4, addr6 in (
            (tap, r.sender, f"{NET}.8.1/24", "fd00:93:8::1/64"),
            (up, r.receiver, f"{r.v4}/24", f"{r.v6}/64"),
        ):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", host, "master", br, "up")
            sh("ip", "-n", ns, "addr", "add", addr4, "dev", "eth0")
            sh("ip", "-n", ns, "addr", "add", addr6, "dev", "eth0", "nodad")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "link", "set", br, "up")
        for cmd in PROBE:  # the receiver's own netns: never the host's ruleset
            sh("ip", "netns", "exec", r.receiver, "nft", *cmd.split())
        yield r
    finally:
        carry_out(tap, None, read_dscp_marks, run_argv)
        for name in (tap, up, br):
            sh("ip", "link", "del", name, check=False)
        for ns in (r.sender, r.receiver):
            sh("ip", "netns", "del", ns, check=False)


def ef_counts(r: Rig) -> tuple[int, int]:
    """(IPv4, IPv6) packets the receiver got with DSCP 46, from its own netns's counters."""
    text = sh("ip", "netns", "exec", r.receiver, "nft", "list", "table", "inet", "probe")
    got = [int(n) for n in re.findall(r"counter packets (\d+)", text)]
    return got[0], got[1]


def pings(r: Rig) -> None:
    sh("ip", "netns", "exec", r.sender, "ping", "-c", "3", "-i", "0.2", "-W", "2", r.v4)
    sh("ip", "netns", "exec", r.sender, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", r.v6)


def test_mark_reaches_the_wire_both_families_and_clear_removes_it(rig: Rig) -> None:
    pings(rig)
    assert ef_counts(rig) == (0, 0)  # unmarked before: the probe can tell
    out = carry_out(rig.tap, 46, read_dscp_marks, run_argv)
    assert out.status == "enforced", out.error
    assert all(DSCP_TABLE in argv and "netdev" in argv for argv in out.commands)
    pings(rig)
    v4, v6 = ef_counts(rig)
    assert v4 >= 3 and v6 >= 3  # echo requests (replies go the other way, unmarked)
    cleared = carry_out(rig.tap, None, read_dscp_marks, run_argv)
    assert cleared.status == "cleared"
    assert rig.tap not in read_dscp_marks()
    pings(rig)
    assert ef_counts(rig) == (v4, v6)
    assert (
        "No such file"
        in subprocess.run(
            ["nft", "list", "table", "netdev", DSCP_TABLE], capture_output=True, text=True, check=False
        ).stderr
    )  # the last chain took the table with it
