"""``vifscope qos`` on real OVSDB rows: an OVS bridge of this test's (``vs-q-obr``, userspace
datapath) whose port carries the QoS, queue and ingress policing libvirt writes for
``<bandwidth>`` (the ovs-vsctl calls of virnetdevopenvswitch.c, in its units), and a port with
none; the domains are libvirt test-driver domains with ``<virtualport type='openvswitch'/>``.
OVSDB is what libvirt shapes OVS ports through, so it is what the verdict reads (tc is not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vifscope.lab.host import ensure_ovs

pytestmark = pytest.mark.integration

BRIDGE, PORTS = "vs-q-obr", ("vs-q-op0", "vs-q-op1")
VM = "5b2e9c1d-7a3f-4e6b-8c9d-0e1f2a3b4c50"
NODE = """<node>
  <domain type='test'>
    <name>vs-q-ovs{i}</name>
    <uuid>5b2e9c1d-7a3f-4e6b-8c9d-0e1f2a3b4c5{i}</uuid>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <interface type='bridge'>
        <mac address='52:54:00:77:00:0{i}'/>
        <source bridge='{bridge}'/>
        <virtualport type='openvswitch'/>
        <bandwidth>{bw}</bandwidth>
        <target dev='{port}'/>
      </interface>
    </devices>
  </domain>
</node>
"""
BANDWIDTH = (
    "<inbound average='1000' peak='2000' burst='256'/><outbound average='500' burst='500'/>",
    "<outbound average='500'/>",
)


def vsctl(*args: str) -> str:
    return subprocess.run(["ovs-vsctl", "--timeout=10", *args], capture_output=True, text=True, check=True).stdout


def libvirt_qos(port: str) -> list[str]:
    """What virNetDevOpenvswitchInterfaceSetQos runs for inbound 1000/2000/256 and outbound
    500/500 (kB/s, KiB): rates x 8,000 and burst x 8,192 in bits; policing x 8 in kbit. Returns
    the uuids ovs-vsctl created (the QoS and queue rows, removed by the fixture)."""
    ids = [f'external-ids:vm-id="{VM}"', f'external-ids:ifname="{port}"']
    conf = ["other_config:min-rate=8000000", "other_config:burst=2097152", "other_config:max-rate=16000000"]
    out = vsctl(
        "set", "port", port, "qos=@qos1", *ids,
        "--", "--id=@qos1", "create", "qos", "type=linux-htb", *conf, "queues:0=@queue0", *ids,
        "--", "--id=@queue0", "create", "queue", *conf, *ids,
    )  # fmt: skip
    vsctl("set", "Interface", port, "ingress_policing_rate=4000", "ingress_policing_burst=4000")
    return out.split()


@pytest.fixture
def ovs_ports() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (OVS)")
    ensure_ovs()
    created: list[str] = []
    vsctl("--may-exist", "add-br", BRIDGE, "--", "set", "Bridge", BRIDGE, "datapath_type=netdev")
    try:
        for port in PORTS:
            vsctl("--may-exist", "add-port", BRIDGE, port, "--", "set", "Interface", port, "type=internal")
        created = libvirt_qos(PORTS[0])
        yield
    finally:
        vsctl("--if-exists", "del-br", BRIDGE)
        for table in ("QoS", "Queue"):  # only the rows this test created; QoS first: it references the queue
            for uuid in created:
                destroy = ["ovs-vsctl", "--timeout=10", "--if-exists", "destroy", table, uuid]
                subprocess.run(destroy, check=False, capture_output=True)


def test_qos_reads_libvirts_ovsdb_rows(ovs_ports: None, tmp_path: Path) -> None:
    node = tmp_path / "node.xml"
    doms = [
        NODE.format(i=i, bridge=BRIDGE, port=p, bw=bw) for i, (p, bw) in enumerate(zip(PORTS, BANDWIDTH, strict=True))
    ]
    node.write_text("<node>" + "".join(d.removeprefix("<node>").removesuffix("</node>\n") for d in doms) + "</node>")
    cmd = [
        sys.executable,
        "-m",
        "vifscope",
        "-c",
        f"test://{node}",
        "qos",
        "--json",
        "-d",
        "vs-q-ovs0",
        "-d",
        "vs-q-ovs1",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 1, proc.stderr  # vs-q-ovs1's policing is missing
    vifs = {v["domain"]: v for v in json.loads(proc.stdout)["vifs"]}
    capped = vifs["vs-q-ovs0"]
    assert (capped["verdict"], capped["read_from"]) == ("enforced", "ovsdb")
    assert capped["inbound"]["enforced"] == {
        "mechanism": "ovs-linux-htb",
        "average": 1000.0,
        "peak": 2000.0,
        "burst": 256.0,
    }
    assert capped["outbound"]["enforced"] == {
        "mechanism": "ovs-policing",
        "average": 500.0,
        "peak": None,
        "burst": 500.0,
    }
    bare = vifs["vs-q-ovs1"]
    assert (bare["verdict"], bare["inbound"]["verdict"], bare["outbound"]["verdict"]) == ("missing", "none", "missing")
