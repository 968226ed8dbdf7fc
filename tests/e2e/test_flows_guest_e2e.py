"""``vifscope flows`` on a real busybox TCG guest (vifscope.lab.qosguest: its tap on a bridge of
its own, a namespace at the other end): what the guest sends over TCP appears as one flow whose
payload bytes equal what the receiver counted (plus at most 2 % of retransmissions: TCG guests
on a loaded host do retransmit), and its pings as 3 echo requests out and 3 replies in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vifscope.lab.qosguest import URI, QosGuest

# Counts what it receives on one connection, prints the total when the sender closes.
SINK = (
    "import socket,sys\ns=socket.socket();s.setsockopt(1,2,1);s.bind((sys.argv[1],int(sys.argv[2])));s.listen(1)\n"
    "c,_=s.accept();n=0\nwhile True:\n d=c.recv(1<<16)\n if not d: break\n n+=len(d)\nprint(n,flush=True)\n"
)
PORT = 5011
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def guest() -> Iterator[QosGuest]:
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests need root (they boot a guest)")
    prefix = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
    net = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78")
    with QosGuest(prefix, net) as g:
        yield g


def start_flows(g: QosGuest, *argv: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "vifscope", "-c", URI, "flows", g.domain, "--json", *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("flows: collecting"):
            assert "on 1 taps" in line, line
            return proc
    proc.kill()
    pytest.fail(f"flows did not start: {proc.communicate()}")


def rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (vif,) = doc["vifs"]
    return {t["key"]: t for t in vif["talkers"]}


def test_guest_tcp_payload_and_pings(guest: QosGuest) -> None:
    sink = subprocess.Popen(
        ["ip", "netns", "exec", guest.netns, "python3", "-c", SINK, guest.host_ip, str(PORT)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.5)
    proc = start_flows(guest, "--by", "flow", "--interval", "25", "--top", "50")
    guest.type(f"dd if=/dev/zero bs=65536 count=64 2>/dev/null | nc {guest.host_ip} {PORT}")
    received = int(sink.communicate(timeout=60)[0])
    guest.type(f"ping -c 3 -i 0.3 -s 100 {guest.host_ip} >/dev/null")
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    talkers = rows(json.loads(out))
    tcp = [t for k, t in talkers.items() if k.startswith("tcp ") and k.endswith(f"> {guest.host_ip}:{PORT}")]
    assert len(tcp) == 1, sorted(talkers)
    sent = tcp[0]["out"]["payload_bytes"]
    assert received == 64 * 65536
    assert received <= sent <= received * 1.02, (sent, received)
    icmp = talkers[f"icmp > {guest.host_ip}"]
    assert (icmp["out"]["packets"], icmp["in"]["packets"]) == (3, 3)
    assert (icmp["out"]["payload_bytes"], icmp["in"]["payload_bytes"]) == (300, 300)
