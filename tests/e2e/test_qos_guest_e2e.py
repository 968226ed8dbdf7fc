"""``qos set --backend tc`` on a real busybox TCG guest: the cap holds for traffic the guest
really sends (busybox ``dd | nc``) and receives (``nc -l``), and --clear lifts it; ``--dscp``
marks what the guest sends (counted by DSCP in the peer namespace's own nft ruleset).

Bounds are generous (0.5x to 1.3x the cap): the TCG guest's speed depends on the load other
sessions put on the host. The numbers themselves go to BENCHMARKS.md (bench/qos_guest.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vifscope.lab.qosguest import QosGuest, vifscope
from vifscope.sources.libvirt.qosmark import MARK_NS

CAP_KBYTES = 500  # 4 Mbit/s: TCG guests here send 30-45 Mbit/s unshaped (BENCHMARKS.md)
CAP = CAP_KBYTES * 8000


@pytest.fixture(scope="module")
def guest() -> Iterator[QosGuest]:
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests need root (they boot a guest)")
    prefix = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
    net = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78")
    with QosGuest(prefix, net) as g:
        yield g


def _set(g: QosGuest, audit: Path, *opts: str) -> dict[str, object]:
    done = vifscope("qos", "set", g.domain, "--mac", g.mac, "--backend", "tc", "--live", "--audit-log", str(audit),
                    "--json", *opts)  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc: dict[str, object] = json.loads(done.stdout)
    return doc


def test_tc_cap_holds_for_a_real_guest_both_ways_and_clear_lifts_it(guest: QosGuest, tmp_path: Path) -> None:
    free_out = guest.outbound(5)
    assert free_out > 2 * CAP, f"the guest sends only {free_out / 1e6:.1f} Mbit/s unshaped: cannot test a cap"
    doc = _set(guest, tmp_path / "audit.jsonl", "--inbound", str(CAP_KBYTES), "--outbound", str(CAP_KBYTES))
    assert doc["status"] == "enforced"
    shown = json.loads(vifscope("qos", "show", "--json").stdout)
    vif = next(v for v in shown["vifs"] if v["domain"] == guest.domain)
    assert (vif["inbound"]["verdict"], vif["outbound"]["verdict"]) == ("enforced", "enforced")
    out, inn = guest.outbound(8), guest.inbound(8)
    assert 0.5 * CAP < out < 1.3 * CAP, f"guest outbound {out / 1e6:.2f} Mbit/s under a {CAP / 1e6:g} Mbit/s cap"
    assert 0.5 * CAP < inn < 1.3 * CAP, f"guest inbound {inn / 1e6:.2f} Mbit/s under a {CAP / 1e6:g} Mbit/s cap"
    _set(guest, tmp_path / "audit.jsonl", "--clear")
    after = guest.outbound(5)
    assert after > 2 * CAP, f"still {after / 1e6:.2f} Mbit/s after --clear"


def _ef_pings(g: QosGuest) -> int:
    """Echo requests from the guest that reached the namespace marked EF (its own ruleset)."""
    g.type(f"ping -c 4 -i 0.3 {g.host_ip} >/dev/null")
    time.sleep(4)
    text = subprocess.run(
        ["ip", "netns", "exec", g.netns, "nft", "list", "table", "inet", "probe"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(re.findall(r"counter packets (\d+)", text)[0])


def test_dscp_marks_what_the_guest_sends_and_clear_unmarks(guest: QosGuest, tmp_path: Path) -> None:
    for cmd in ("add table inet probe", "add chain inet probe c { type filter hook input priority 0 ; }",
                "add rule inet probe c icmp type echo-request ip dscp 46 counter"):  # fmt: skip
        subprocess.run(["ip", "netns", "exec", guest.netns, "nft", *cmd.split()], check=True)
    assert _ef_pings(guest) == 0  # unmarked before: the probe can tell
    doc = _set(guest, tmp_path / "audit.jsonl", "--dscp", "ef")
    assert doc["dscp"]["status"] == "enforced", doc
    assert doc["dscp"]["in_force"] == 46
    meta = subprocess.run(["virsh", "-c", "qemu:///system", "metadata", guest.domain, MARK_NS],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert 'dscp="46"' in meta or "dscp='46'" in meta
    shown = json.loads(vifscope("qos", "show", "--json").stdout)
    row = next(v for v in shown["vifs"] if v["domain"] == guest.domain)
    assert row["dscp"]["declared"] == 46 and row["dscp"]["verdict"] == "enforced", row["dscp"]
    marked = _ef_pings(guest)
    assert marked >= 4
    doc = _set(guest, tmp_path / "audit.jsonl", "--clear")
    assert doc["dscp"]["status"] == "cleared", doc
    assert _ef_pings(guest) == marked
    shown = json.loads(vifscope("qos", "show", "--json").stdout)
    assert next(v for v in shown["vifs"] if v["domain"] == guest.domain)["dscp"] is None
