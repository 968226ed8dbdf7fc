"""``watch --flows`` with more taps than one attach budget takes (2 s of TCX attaches per table
update, ~26 ms a tap): on a quiet host no netlink event comes to continue, so the flows ticks
must; every tap is attached within seconds, not at the 60 s resync's pace (bench/flows_cpu.py
measures the same at 1,000 taps). 300 veths of 75 test-driver domains, a private libvirtd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vifscope.lab.flowhost import vifscope_links, vifscope_programs
from vifscope.lab.private import PrivateLibvirtd, wait_until

pytestmark = pytest.mark.integration
P = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
TAPS = 300
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("needs root (netns, veth, BPF)")
    ns = f"{P}wm"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        batch = ["link add br0 type bridge", "link set br0 up"]
        for i in range(TAPS):
            batch += [f"link add t{i} type veth peer name e{i}", f"link set t{i} master br0 up"]
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(batch) + "\n", text=True, check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def node_xml() -> str:
    doms = []
    for d in range(TAPS // 4):
        nics = "".join(
            f"<interface type='bridge'><mac address='52:54:00:ee:{i >> 8:02x}:{i & 255:02x}'/>"
            f"<source bridge='br0'/><target dev='t{i}'/></interface>"
            for i in range(4 * d, 4 * d + 4)
        )
        doms.append(
            f"<domain type='test'><name>wm{d}</name><uuid>eeeeeeee-0000-4000-8000-{d:012d}</uuid><memory>65536"
            f"</memory><os><type>hvm</type></os><devices>{nics}</devices></domain>"
        )
    return f"<node>{''.join(doms)}</node>\n"


def test_taps_beyond_one_attach_budget_are_attached_at_the_flows_ticks(netns: str, tmp_path: Path) -> None:
    before = {p["id"] for p in vifscope_programs()}

    def ours() -> int:
        return len([link for link in vifscope_links() if link["prog_id"] not in before])

    (tmp_path / "node.xml").write_text(node_xml())
    with PrivateLibvirtd() as daemon:
        daemon.start()
        argv = ["ip", "netns", "exec", netns, sys.executable, "-m", "vifscope", "-c", daemon.uri(tmp_path / "node.xml")]
        argv += ["watch", "--json", "--flows", "1", "--audit-log", str(tmp_path / "audit.jsonl")]
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            assert json.loads(proc.stdout.readline())["event"] == "start"
            started = time.monotonic()
            assert wait_until(lambda: ours() >= 2 * TAPS, 40, 0.5), f"{ours()} of {2 * TAPS} links"
            took = time.monotonic() - started
            assert took < 40  # the next resync would be at 60 s; one budget of 2 s cannot attach 300 taps
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
    assert rc == 0, proc.stderr.read() if proc.stderr else ""
    assert wait_until(lambda: ours() == 0, 30, 0.5)
