"""Guest addresses by ARP through the real status path: in a private netns, a bridge with a
domain's target link on it and neighbour entries on the bridge; ``vifscope status --json`` (libvirt's
test driver for the declared side) lists the entries with the vif's MAC on the vif's bridge, and
no others: one neighbour dump, joined in bind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vifscope.bind.addresses import eui64_link_local

pytestmark = pytest.mark.integration

MAC = "52:54:00:82:00:01"
BATCH = f"""\
link add vs-g-abr type bridge
link add vs-g-abr2 type bridge
link add vs-g-atap type veth peer name vs-g-apeer
link set vs-g-apeer address {MAC}
link set vs-g-apeer up
link set vs-g-atap master vs-g-abr
link set vs-g-atap up
link set vs-g-abr up
link set vs-g-abr2 up
"""
# Added once the bridge shows its carrier: a carrier event the kernel handles late (linkwatch
# is deferred, more so under load) flushes the link's non-permanent neighbours
# (neigh_carrier_down); in one loaded CI run that took the STALE entry away.
NEIGHBOURS = f"""\
neigh add 10.82.250.5 lladdr {MAC} dev vs-g-abr nud permanent
neigh add fd00:82::5 lladdr {MAC} dev vs-g-abr nud stale
neigh add 10.82.250.6 lladdr 52:54:00:82:00:02 dev vs-g-abr nud permanent
neigh add 10.82.251.5 lladdr {MAC} dev vs-g-abr2 nud permanent
neigh add 10.82.250.7 dev vs-g-abr nud failed
"""
NODE = f"""<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
<domain type='test'><name>vs-g-arp</name><memory>65536</memory><os><type>hvm</type></os><devices>
<interface type='bridge'><mac address='{MAC}'/><source bridge='vs-g-abr'/><target dev='vs-g-atap'/></interface>
</devices></domain></node>"""


def _wait_for_carrier(ns: str, link: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", "dev", link], capture_output=True, text=True)
        if "LOWER_UP" in json.loads(out.stdout or "[{}]")[0].get("flags", []):
            return
        time.sleep(0.05)
    pytest.fail(f"{link} got no carrier within {seconds} s")


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    ns = f"vs-g-arp{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=BATCH, text=True, check=True)
        _wait_for_carrier(ns, "vs-g-abr")
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=NEIGHBOURS, text=True, check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_status_lists_the_neighbours_of_the_vifs_mac_on_its_bridge(netns: str, tmp_path: Path) -> None:
    node = tmp_path / "node.xml"
    node.write_text(NODE)
    cmd = ["ip", "netns", "exec", netns, sys.executable, "-m", "vifscope", "-c", f"test://{node}", "status", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    (vif,) = json.loads(proc.stdout)["vifs"]
    assert vif["status"] == "bound"
    assert vif["addresses"] == [
        {"address": "10.82.250.5", "prefix": None, "family": "ipv4", "source": "arp"},
        {"address": "fd00:82::5", "prefix": None, "family": "ipv6", "source": "arp"},
        {"address": "fe80::5054:ff:fe82:1", "prefix": 64, "family": "ipv6", "source": "eui64"},
    ]


def test_the_derived_link_local_is_the_one_the_kernel_gives_that_mac(netns: str) -> None:
    """Linux's own EUI-64 (addr_gen_mode eui64, the default) on a link that carries the vif's MAC."""
    out = subprocess.run(
        ["ip", "-n", netns, "-j", "-6", "addr", "show", "dev", "vs-g-apeer", "scope", "link"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (link,) = json.loads(out)
    assert [a["local"] for a in link["addr_info"]] == [eui64_link_local(MAC)]
