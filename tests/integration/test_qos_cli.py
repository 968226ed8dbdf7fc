"""``vifscope qos`` end to end on a real kernel: libvirt's test driver declares running domains
with ``<bandwidth>`` (libvirtd cannot start such domains on this kernel: it has no sfq or
police), their target devices are real taps in a private netns with real htb classes, and the
CLI runs inside that netns. Verdicts and exit codes come from the kernel's answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DOMAIN = """\
  <domain type='test'>
    <name>{name}</name>
    <uuid>{uuid}</uuid>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <interface type='bridge'>
        <mac address='{mac}'/>
        <source bridge='vs-q-br0'/>
        <target dev='{dev}'/>{bandwidth}
      </interface>
    </devices>
  </domain>
"""
# name, tap, <bandwidth> inner XML, tc lines on the tap
DOMAINS = [
    ("vs-q-capped", "vs-q-t1", "<inbound average='1000' peak='2000' burst='256'/>",
     ["qdisc add dev vs-q-t1 root handle 1: htb default 1",
      "class add dev vs-q-t1 parent 1: classid 1:1 htb rate 1000kbps ceil 2000kbps burst 256kb"]),
    ("vs-q-lost", "vs-q-t2", "<inbound average='1000'/>", []),
    ("vs-q-byhand", "vs-q-t3", "", ["qdisc add dev vs-q-t3 root handle 1: htb default 1",
                                    "class add dev vs-q-t3 parent 1: classid 1:1 htb rate 5mbit"]),
    ("vs-q-changed", "vs-q-t4", "<inbound average='1000'/>",
     ["qdisc add dev vs-q-t4 root handle 1: htb default 1",
      "class add dev vs-q-t4 parent 1: classid 1:1 htb rate 3000kbps"]),
]  # fmt: skip


def node_xml() -> str:
    doms = []
    for i, (name, dev, bw, _tc) in enumerate(DOMAINS):
        bandwidth = f"\n        <bandwidth>{bw}</bandwidth>" if bw else ""
        uuid = f"7d3e8c2a-1b4f-4c6d-9e8f-0a1b2c3d4e{i:02d}"
        doms.append(DOMAIN.format(name=name, uuid=uuid, mac=f"52:54:00:76:00:{i:02x}", dev=dev, bandwidth=bandwidth))
    return "<node>\n" + "".join(doms) + "</node>\n"


@pytest.fixture
def netns(tmp_path: Path):  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    ns = f"vs-q-cli{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        batch = "".join(f"tuntap add dev {dev} mode tap\n" for _n, dev, _b, _t in DOMAINS)
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True, check=True)
        for _n, _d, _b, lines in DOMAINS:
            for line in lines:
                subprocess.run(["ip", "netns", "exec", ns, "tc", *line.split()], check=True, capture_output=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def qos(ns: str, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "vifscope", "-c", uri, "qos", *args]
    env = {**os.environ, "COLUMNS": "250"}  # one table row a line
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, env=env)


def test_qos_show_judges_real_htb_classes(netns: str, tmp_path: Path) -> None:
    node = tmp_path / "node.xml"
    node.write_text(node_xml())
    uri = f"test://{node}"
    proc = qos(netns, uri, "--json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    got = {v["domain"]: (v["verdict"], v["inbound"]["verdict"], v["outbound"]["verdict"]) for v in doc["vifs"]}
    assert got == {
        "vs-q-capped": ("enforced", "enforced", "none"),
        "vs-q-lost": ("missing", "missing", "none"),
        "vs-q-byhand": ("undeclared", "undeclared", "none"),
        "vs-q-changed": ("drift", "drift", "none"),
    }
    capped = next(v for v in doc["vifs"] if v["domain"] == "vs-q-capped")
    assert capped["inbound"]["declared"] == {"average": 1000, "peak": 2000, "burst": 256, "floor": None}
    assert capped["inbound"]["enforced"] == {"mechanism": "htb", "average": 1000.0, "peak": 2000.0, "burst": 256.0}
    changed = next(v for v in doc["vifs"] if v["domain"] == "vs-q-changed")
    assert changed["inbound"]["differs"] == ["average", "peak"]
    assert not [e for e in doc["source_errors"] if e["source"] in ("tc", "libvirt", "netlink")]


def test_qos_show_for_one_domain_and_in_bits_for_humans(netns: str, tmp_path: Path) -> None:
    node = tmp_path / "node.xml"
    node.write_text(node_xml())
    uri = f"test://{node}"
    one = qos(netns, uri, "show", "-d", "vs-q-capped")
    assert one.returncode == 0, one.stderr
    assert "8.0 Mbit/s (peak 16.0 Mbit/s), burst 256 KiB" in one.stdout
    assert "1 vif(s): 1 enforced" in one.stdout
    down = qos(netns, "test:///nonexistent/node.xml", "--json")
    assert down.returncode == 3
