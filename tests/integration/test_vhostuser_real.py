"""vhost-user verdicts against real UNIX sockets and a real OVS port.

The declared side is libvirt's test driver (a running domain with vhostuser interfaces); the
sockets are real: this test listens on some (playing the switch or QEMU), connects to one,
leaves a stale socket file, a regular file and a missing path. ``vifscope status`` then runs as
a separate process and finds the listeners through /proc/net/unix and this process's fds.
OVS here has no DPDK: it records a dpdkvhostuserclient port with an Interface error, which
must come out as ``ovs_error`` (down), never bound.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vifscope.bind.join import bind
from vifscope.lab.host import ensure_ovs
from vifscope.sources.deadline import DeadlineSnapshotter

pytestmark = pytest.mark.integration

NODE = """<node>
  <domain type='test'>
    <name>{name}</name>
    <memory>65536</memory>
    <vcpu>1</vcpu>
    <os><type>hvm</type></os>
    <devices>
{ifaces}
    </devices>
  </domain>
</node>
"""


def vhu(i: int, path: Path, mode: str) -> str:
    return (
        f"<interface type='vhostuser'><mac address='52:54:00:76:a0:{i:02x}'/>"
        f"<source type='unix' path='{path}' mode='{mode}'/><model type='virtio'/></interface>"
    )


@dataclass
class Host:
    dir: Path
    uri: str
    domain: str
    bridge: str
    held: list[socket.socket]


def _listen(path: Path, held: list[socket.socket], connect: bool = False) -> None:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(4)
    held.append(srv)
    if connect:
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cli.connect(str(path))
        conn, _ = srv.accept()
        held += [cli, conn]


def _ovs(*args: str) -> None:
    subprocess.run(["ovs-vsctl", "--timeout=10", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def host() -> Iterator[Host]:
    if os.geteuid() != 0 or shutil.which("ovs-vsctl") is None:
        pytest.fail("needs root and Open vSwitch (scripts/setup.sh installs it)")
    ensure_ovs()
    tmp = Path(tempfile.mkdtemp(prefix="vs-v-", dir="/tmp"))  # short: sun_path holds 108 bytes
    bridge, held = f"vs-v-b{os.getpid() % 100000}", []
    try:
        _listen(tmp / "ok.sock", held, connect=True)  # client mode: the "switch" listens, "QEMU" came
        _listen(tmp / "lonely.sock", held)  # listening, nobody connected
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(str(tmp / "stale.sock"))  # closed: the file stays, nobody listens
        (tmp / "plain").write_text("not a socket\n")
        _listen(tmp / "qemu.sock", held, connect=True)  # server mode: "QEMU" listens, OVS is the client
        _ovs("add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev")
        port = f"{bridge}p"
        # OVS without DPDK accepts the row and records an error (ovs-vsctl still exits 0).
        subprocess.run(
            ["ovs-vsctl", "--timeout=10", "add-port", bridge, port, "--", "set", "Interface", port,
             "type=dpdkvhostuserclient", f"options:vhost-server-path={tmp / 'qemu.sock'}"],
            capture_output=True, check=False,
        )  # fmt: skip
        # QEMU client of a dpdkvhostuser port: OVS would listen on a socket named after the port.
        _ovs("add-port", bridge, f"{bridge}c", "--", "set", "Interface", f"{bridge}c", "type=dpdkvhostuser")
        ifaces = [
            vhu(0, tmp / "ok.sock", "client"),
            vhu(1, tmp / "lonely.sock", "client"),
            vhu(2, tmp / "stale.sock", "client"),
            vhu(3, tmp / "gone.sock", "client"),
            vhu(4, tmp / "plain", "client"),
            vhu(5, tmp / "qemu.sock", "server"),
            vhu(6, tmp / f"{bridge}c", "client"),
        ]
        name = tmp.name
        (tmp / "node.xml").write_text(NODE.format(name=name, ifaces="\n".join(ifaces)))
        yield Host(tmp, f"test://{tmp / 'node.xml'}", name, bridge, held)
    finally:
        for s in held:
            s.close()
        subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", bridge], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def status(uri: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "vifscope", "-c", uri, "status", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return proc.returncode, json.loads(proc.stdout)


def test_real_sockets_give_each_verdict(host: Host) -> None:
    code, doc = status(host.uri)
    got = {v["index"]: (v["status"], sorted(v["problems"])) for v in doc["vifs"] if v["domain"] == host.domain}
    assert got == {
        0: ("bound", []),
        1: ("down", ["socket_not_connected"]),
        2: ("detached", ["socket_unheld"]),
        3: ("missing", ["socket_missing"]),
        4: ("missing", ["not_a_socket"]),
        5: ("down", ["ovs_error"]),  # the OVS port is found by vhost-server-path, in error
        6: ("missing", ["ovs_error", "socket_missing"]),  # found by name; without DPDK OVS makes no socket
    }
    assert code == 1
    by_index = {v["index"]: v for v in doc["vifs"]}
    assert f"[{os.getpid()}]" in by_index[0]["detail"], "the listener's holder is this test process"
    assert by_index[5]["observed"]["ovs_bridge"] == by_index[6]["observed"]["ovs_bridge"] == host.bridge


def test_closing_the_peer_changes_the_verdict(host: Host) -> None:
    """The same socket, bound while a peer is connected, is down once the listener is the only one."""
    for s in host.held[:3]:  # ok.sock: listener, client, accepted connection
        s.close()
    _, doc = status(host.uri)
    vif0 = next(v for v in doc["vifs"] if v["index"] == 0)
    assert (vif0["status"], vif0["problems"]) == ("detached", ["socket_unheld"])


def test_the_exporters_deadline_snapshot_sees_the_same(host: Host) -> None:
    """exporter/top take snapshots through DeadlineSnapshotter: the backend facts come with them."""
    snap = DeadlineSnapshotter(host.uri, timeout=10.0).take().snapshot
    got = {b.vif.index: b.status.value for b in bind(snap)}
    assert (got[0], got[1], got[3]) == ("bound", "down", "missing")
