"""sec.port_not_isolated's bridge-wide fix, run as printed in a private netns: every guest port
ends isolated — the taps the loop finds through sysfs and a declared veth (an LXC guest's) it is
given by name — while the uplink (a veth nobody declares) stays open, and names that are shell
syntax stay names.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.unit.ipjson import bridge, phys, snapshot, tap, veth
from vifscope.bind.join import bind
from vifscope.checks import CHECKS_BY_ID
from vifscope.checks.base import CheckContext
from vifscope.checks.security import port_not_isolated
from vifscope.model import DeclaredVif, DomainState

pytestmark = pytest.mark.integration

NS = "vs-isofix"
BR = "vs-b;$(id)`id`"  # the kernel refuses whitespace and "/" in names, nothing else here
TAPS = ("vs-t;id", "vs-t'\"q")
CT = "vs-ct'0"
UPLINK = "vs-up0"


def sh(*argv: str) -> None:
    subprocess.run(["ip", "netns", "exec", NS, *argv], check=True, capture_output=True)


@pytest.fixture()
def netns() -> object:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        sh("ip", "link", "add", "name", BR, "type", "bridge")
        for t in TAPS:
            sh("ip", "tuntap", "add", "dev", t, "mode", "tap")
        sh("ip", "link", "add", "name", CT, "type", "veth", "peer", "name", "vs-ct-peer")
        sh("ip", "link", "add", "name", UPLINK, "type", "veth", "peer", "name", "vs-up1")
        for port in (*TAPS, CT, UPLINK):
            sh("ip", "link", "set", "dev", port, "master", BR)
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


def isolated(port: str) -> bool:
    out = subprocess.run(
        ["ip", "netns", "exec", NS, "cat", f"/sys/class/net/{port}/brport/isolated"], capture_output=True, text=True
    )
    return out.stdout.strip() == "1"


def test_the_printed_fix_isolates_every_guest_port_and_no_uplink(netns: object, tmp_path: object) -> None:
    vifs = [
        DeclaredVif("vs-vm", "u1", DomainState.RUNNING, i, "bridge", f"52:54:00:00:02:0{i}", source=BR, target=t)
        for i, t in enumerate(TAPS)
    ]
    vifs.append(DeclaredVif("vs-ct", "u2", DomainState.RUNNING, 0, "bridge", "52:54:00:00:02:10", source=BR, target=CT))
    links = [bridge(BR), *(tap(t, master=BR) for t in TAPS), veth(CT, "vs-ct-peer", master=BR)]
    links.append(veth(UPLINK, "vs-up1", master=BR))
    snap = snapshot(vifs, [*links, phys("vs-eth9")])
    ctx = CheckContext(snap, bind(snap))
    (found,) = port_not_isolated(ctx, CHECKS_BY_ID["sec.port_not_isolated"])
    assert found.fix is not None
    line = found.fix.text()
    sh("sh", "-c", line)  # pasted into a shell, as a user would
    assert [isolated(p) for p in (*TAPS, CT)] == [True, True, True]
    assert not isolated(UPLINK)
