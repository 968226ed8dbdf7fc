"""``vifscope flows`` against real traffic (iperf3 TCP, ping) between two netns "guests" whose
veths are the taps of two test-driver domains (vifscope.lab.flowhost).

What is compared, and how exactly:
- TCP: the data connection's ``out.payload_bytes`` on the sender's tap equals what iperf3 says
  it sent, plus its 37-byte session cookie, plus at most one MSS per retransmitted segment
  (retransmissions cross the tap again; with none the match is exact to the byte). The
  receiver's tap sees the same payload ``in``.
  ``bytes`` (L2 frames) exceed payload by 54..134 bytes of headers per packet (Ethernet 14 +
  IPv4 20..60 + TCP 20..60: the headers are counted once per GSO segment).
- ping -s 100: 5 echo requests out and 5 replies in, 100 payload bytes each, 142-byte frames.
- Coexistence: the receiver's tap has libvirt-QoS-style ``ingress`` qdisc + u32 filter with a
  mirred action; its counters keep rising while flows collects, and qdisc and filter are still
  there afterwards. After flows exits — normally or SIGKILLed — no vifscope program is loaded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vifscope.lab.flowhost import FlowHost, flow_host, vifscope_links, vifscope_programs

pytestmark = pytest.mark.integration
P = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78")
IPERF_COOKIE = 37  # iperf3 writes its session cookie on each data connection before the data


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FlowHost]:
    if os.geteuid() != 0:
        pytest.fail("needs root (netns, veth, BPF)")
    with flow_host(tmp_path, P, NET) as h:
        yield h


@pytest.fixture
def before() -> set[int]:
    """vifscope programs some other run holds (a bench): bpftool 7.1 cannot say which taps a
    TCX link is on, so this test's programs are the ones that were not there before it."""
    return {p["id"] for p in vifscope_programs()}


def ours(before: set[int]) -> list[dict[str, Any]]:
    return [p for p in vifscope_programs() if p["id"] not in before]


def start_flows(h: FlowHost, *argv: str, taps: int = 2) -> subprocess.Popen[str]:
    """``vifscope flows`` in the background, returned once it says it collects on ``taps`` taps
    (its stderr line, printed after the last attach)."""
    proc = subprocess.Popen(
        h.vifscope_argv("flows", "--json", *argv),
        env=h.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("flows: collecting"):
            assert f"on {taps} taps" in line, line
            return proc
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"flows never attached (rc {proc.returncode}): {out} {err}")


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def vif(doc: dict[str, Any], domain: str) -> dict[str, Any]:
    return next(v for v in doc["vifs"] if v["domain"] == domain)


def row(v: dict[str, Any], key: str) -> dict[str, Any]:
    rows = {t["key"]: t for t in v["talkers"]}
    assert key in rows, f"{key} not among {sorted(rows)}"
    return rows[key]


def test_iperf3_tcp_bytes_match(host: FlowHost, before: set[int]) -> None:
    server = subprocess.Popen(["ip", "netns", "exec", host.guests[1], "iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        proc = start_flows(host, "--by", "flow", "--interval", "6", "--top", "50")
        ran = host.in_guest(0, "iperf3", "-c", host.addrs[1], "-t", "2", "-b", "400M", "-J")
        assert ran.returncode == 0, ran.stderr
        doc = finish(proc)
    finally:
        server.kill()
        server.wait()
    iperf = json.loads(ran.stdout)
    sent, retrans = iperf["end"]["sum_sent"]["bytes"], iperf["end"]["sum_sent"].get("retransmits", 0)
    port = iperf["start"]["connected"][0]["local_port"]
    key_a = f"tcp :{port} > {host.addrs[1]}:5201"
    a = row(vif(doc, host.domains[0]), key_a)
    assert a["peer"] == host.domains[1]  # named by the peer vif's MAC
    extra = a["out"]["payload_bytes"] - sent - IPERF_COOKIE
    assert 0 <= extra <= retrans * 1448, (a, sent, retrans)
    b = row(vif(doc, host.domains[1]), f"tcp :5201 > {host.addrs[0]}:{port}")
    assert b["peer"] == host.domains[0]
    assert b["in"]["payload_bytes"] == a["out"]["payload_bytes"]  # the same segments, other tap
    assert b["in"]["packets"] == a["out"]["packets"]
    headers = a["out"]["bytes"] - a["out"]["payload_bytes"]
    assert 54 * a["out"]["packets"] <= headers <= 134 * a["out"]["packets"]
    assert doc["counters"]["evicted"] == 0 and doc["counters"]["failed"] == 0
    assert doc["program"] in ("built", "prebuilt")
    assert not ours(before)


def test_ping_counts_and_proto_grouping(host: FlowHost) -> None:
    proc = start_flows(host, "--by", "proto", "--interval", "3", host.domains[0], taps=1)
    ran = host.in_guest(0, "ping", "-c", "5", "-i", "0.2", "-s", "100", host.addrs[1])
    assert ran.returncode == 0, ran.stderr
    doc = finish(proc)
    assert [v["domain"] for v in doc["vifs"]] == [host.domains[0]]  # DOMAIN filter
    icmp = row(doc["vifs"][0], "icmp")
    assert (icmp["out"]["packets"], icmp["in"]["packets"]) == (5, 5)
    assert (icmp["out"]["payload_bytes"], icmp["in"]["payload_bytes"]) == (500, 500)
    assert (icmp["out"]["bytes"], icmp["in"]["bytes"]) == (5 * 142, 5 * 142)


def _ingress_policy(h: FlowHost) -> tuple[int, int]:
    """(filters on the receiver tap's ingress qdisc, packets its mirred action has passed)."""
    filters = h.tc_json("filter", "show", "dev", h.taps[1], "parent", "ffff:")
    actions = [a for f in filters for a in f.get("options", {}).get("actions", [])]
    return len(filters), sum(a.get("stats", {}).get("packets", 0) for a in actions)


def test_coexists_with_ingress_qdisc_and_leaves_nothing(host: FlowHost, before: set[int]) -> None:
    tap = host.taps[1]
    host.in_host("ip", "link", "add", "m0", "type", "veth", "peer", "name", "m1")
    host.in_host("ip", "link", "set", "m0", "up")
    host.in_host("tc", "qdisc", "add", "dev", tap, "ingress")
    host.in_host(
        "tc", "filter", "add", "dev", tap, "parent", "ffff:", "protocol", "ip", "u32", "match", "u32", "0", "0",
        "action", "mirred", "egress", "mirror", "dev", "m0",
    )  # fmt: skip
    n_filters, passed = _ingress_policy(host)  # not `before`: that is the fixture, used at the end
    assert n_filters > 0
    proc = start_flows(host, "--interval", "3", "--by", "peer")
    assert host.in_guest(1, "ping", "-c", "4", "-i", "0.2", host.addrs[0]).returncode == 0
    during = _ingress_policy(host)[1]
    doc = finish(proc)
    assert during >= passed + 4  # the mirred filter kept matching while our program ran first
    assert row(vif(doc, host.domains[1]), host.addrs[0])["out"]["packets"] >= 4
    assert _ingress_policy(host)[0] == n_filters  # the qdisc and its filter are still there
    qdiscs = [q["kind"] for q in host.tc_json("qdisc", "show", "dev", tap)]
    assert "ingress" in qdiscs and "clsact" not in qdiscs
    assert host.in_guest(1, "ping", "-c", "2", "-i", "0.2", host.addrs[0]).returncode == 0
    assert _ingress_policy(host)[1] >= during + 2  # and keeps working after
    assert not ours(before)


def test_sigkill_leaves_nothing_attached(host: FlowHost, before: set[int]) -> None:
    proc = start_flows(host, "--interval", "60")
    assert len(ours(before)) == 2  # one program each way, shared by both taps
    assert len([link for link in vifscope_links() if link["prog_id"] not in before]) == 4  # each way, each tap
    proc.send_signal(signal.SIGKILL)  # ip netns exec exec()s: this is vifscope itself
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10  # links and programs go when the last fd does (RCU)
    while ours(before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ours(before)


def test_live_redraws_what_moved_and_stops_on_ctrl_c(host: FlowHost, before: set[int]) -> None:
    """--live on a terminal (a pty): each redraw shows the last interval's traffic; SIGINT
    (Ctrl-C) ends it with exit 0 and the links gone."""
    import pty
    import threading

    leader, follower = pty.openpty()
    argv = host.vifscope_argv("flows", "--live", "--interval", "1", host.domains[0])
    # SIGINT as Ctrl-C finds it: a background job (`make test &`, a CI runner) inherits it
    # ignored, and flows would rightly run on.
    proc = subprocess.Popen(
        argv, env=host.env(), stdout=follower, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    os.close(follower)
    screen = bytearray()

    def terminal() -> None:  # read as a terminal does, so a redraw never waits for buffer room
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side closed
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=terminal, daemon=True)
    reader.start()
    try:
        assert proc.stderr is not None
        note = proc.stderr.readline()  # printed after the last attach, before the first redraw
        assert note.startswith("flows: collecting on 1 taps every 1 s"), note
        assert host.in_guest(0, "ping", "-c", "6", "-i", "0.3", host.addrs[1]).returncode == 0
        time.sleep(2.5)  # two more redraws without pings
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    text = bytes(screen).decode(errors="replace")
    assert host.addrs[1] in text and host.domains[1] in text  # the peer row, named
    assert "2 vifs" not in text and "1 vifs over 1.0 s" in text  # one vif (DOMAIN), per interval
    last_frame = text[text.rindex(f"{host.domains[0]}  {host.taps[0]}") :]
    assert host.addrs[1] not in last_frame  # the pings stopped two intervals before: not in the delta
    assert not ours(before)
