"""A source the answer needs goes away for real: exit 3 with one clear line, not a traceback;
and under the daemons (exporter, serve, watch), private libvirtd / ovsdb-server instances are
SIGKILLed and SIGSTOPped: the daemons keep answering, say what is down, and recover by themselves
(the figures -- recovery times, answers during the outage -- are bench/outage.py's)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import sh, vif_of, vifscope, wait_for
from tests.e2e.outage_helpers import NS, STORM_BRIDGE, OutageHost, api_down, line, outage_host, sources_up
from vifscope.lab.host import LIBVIRT_SOCK, OVS_CTL, ensure_libvirtd, ovs_running
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e


def _stop_libvirtd() -> None:
    pid = int(Path("/run/libvirtd.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not LIBVIRT_SOCK.exists(), 15), "libvirtd did not stop"


def test_libvirtd_stopped_exit_3(lab: LabSpec) -> None:
    _stop_libvirtd()
    try:
        res = vifscope("status")
        assert res.rc == 3
        assert "Traceback" not in res.err + res.out
        lines = [line for line in res.err.splitlines() if line.strip()]
        assert lines[0].startswith("error: cannot connect to libvirt at qemu:///system")
        assert "hint:" in res.err and "libvirtd" in res.err
        doc = vifscope("status", "--json").doc
        assert doc["vifs"] == []
        assert [e["source"] for e in doc["source_errors"]] == ["libvirt"]
        assert vifscope("networks").rc == 3
    finally:
        ensure_libvirtd(lambda line: print(line, file=sys.stderr))
    # Guests survive a libvirtd restart; status works again once it reconnects.
    assert wait_for(lambda: vifscope("status", "--json").rc in (0, 1), 20)
    assert vif_of(vifscope("status", "--json").doc, lab.name("web1"))["status"] == "bound"


def test_bad_uri_is_exit_3_with_hint(lab: LabSpec) -> None:
    res = vifscope("-c", "test:///nonexistent/vs-nothing.xml", "status")
    assert res.rc == 3
    assert "error:" in res.err and "hint:" in res.err and "Traceback" not in res.err


def test_usage_error_is_exit_2() -> None:
    assert vifscope("status", "--no-such-flag").rc == 2
    assert vifscope("frobnicate").rc == 2


def test_libvirt_default_uri_is_honoured(lab: LabSpec) -> None:
    doc = vifscope("status", "--json", env={"LIBVIRT_DEFAULT_URI": "qemu:///system"}).doc
    assert doc["uri"] == "qemu:///system"
    res = vifscope("status", "--json", env={"LIBVIRT_DEFAULT_URI": "test:///default"})
    assert res.doc["uri"] == "test:///default"
    assert {v["domain"] for v in res.doc["vifs"]} == {"test"}  # the test driver's built-in domain


def test_ovsdb_down_with_ovs_vif_is_exit_3(lab: LabSpec) -> None:
    sh(str(OVS_CTL), "stop")
    try:
        assert not ovs_running()
        res = vifscope("status", "--json")
        assert res.rc == 3
        ovs = vif_of(res.doc, lab.name("ovs1"))
        assert ovs["status"] == "unverified"
        assert "source_unavailable" in ovs["problems"]
        assert "ovs" in {e["source"] for e in res.doc["source_errors"]}
        # Linux-bridge vifs are still judged.
        assert vif_of(res.doc, lab.name("web1"))["status"] == "bound"
    finally:
        sh(str(OVS_CTL), "start", "--system-id=random")
    assert wait_for(lambda: vif_of(vifscope("status", "--json").doc, lab.name("ovs1"))["status"] == "bound", 20)


# --- Dying and hung sources under the daemons (private libvirtd / ovsdb-server: never the host's) ---


@pytest.fixture
def outage() -> Iterator[OutageHost]:
    if os.geteuid() != 0:
        pytest.fail("needs root (private libvirtd, a network namespace)")
    with outage_host() as host:
        yield host


def test_daemons_answer_through_a_killed_and_a_hung_libvirtd(outage: OutageHost) -> None:
    """SIGKILL, then SIGSTOP (socket open, nothing answers): the exporter and the API keep
    answering, saying libvirt is down; watch reports a tap detached meanwhile and heals it once
    libvirtd is back; all of them recover by themselves and none exits."""
    exporter, metrics = outage.listening("exporter")
    serve, api = outage.listening("serve")
    watch = outage.daemon("watch", "--json", "--heal", "--audit-log", str(outage.dir / "audit.jsonl"))
    try:
        watch.wait(line("start"))
        assert wait_for(lambda: sources_up(metrics).get("libvirt") is True and not api_down(api), 60)
        taps = iter(v for v in outage.plan.vifs)
        for how in ("kill", "stop"):
            vif = next(taps)
            outage.libvirtd.kill() if how == "kill" else outage.libvirtd.signal(signal.SIGSTOP)
            try:
                outage.ip("link", "set", vif.tap, "nomaster")
                watch.wait(line("transition", target=vif.tap, to="detached"))
                assert wait_for(lambda: sources_up(metrics)["libvirt"] is False, 60)  # a complete scrape, libvirt 0
                assert wait_for(lambda: "libvirt" in api_down(api), 60)
                watch.wait(line("source", source="libvirt", state="down"))
            finally:
                outage.libvirtd.start() if how == "kill" else outage.libvirtd.signal(signal.SIGCONT)
            assert wait_for(lambda: sources_up(metrics)["libvirt"] is True, 60), f"exporter after {how}"
            assert wait_for(lambda: "libvirt" not in api_down(api), 60), f"serve after {how}"
            assert wait_for(lambda t=vif.tap, b=vif.bridge: outage.master(t) == b, 60), f"{vif.tap} not healed"
            watch.wait(line("heal", target=vif.tap, result="ok"))
        assert [d.proc.poll() for d in (exporter, serve, watch)] == [None, None, None]
    finally:
        for d in (exporter, serve, watch):
            d.stop()


def test_daemons_answer_through_a_killed_and_a_hung_ovsdb(outage: OutageHost) -> None:
    exporter, metrics = outage.listening("exporter")
    watch = outage.daemon("watch", "--json")
    try:
        watch.wait(line("start"))
        assert wait_for(lambda: sources_up(metrics).get("ovs") is True, 60)
        for how in ("kill", "stop"):
            outage.ovsdb.kill() if how == "kill" else outage.ovsdb.signal(signal.SIGSTOP)
            try:
                assert wait_for(lambda: sources_up(metrics)["ovs"] is False, 60)
                # A hung server is found by the monitor's echo probe, not only by the next resync.
                watch.wait(line("source", source="ovs", state="down"))
            finally:
                outage.ovsdb.start() if how == "kill" else outage.ovsdb.signal(signal.SIGCONT)
            assert wait_for(lambda: sources_up(metrics)["ovs"] is True, 60), f"exporter after {how}"
            watch.wait(line("source", source="ovs", state="up"))
            watch.seen.clear()  # the next round waits for its own down / up lines
        assert [d.proc.poll() for d in (exporter, watch)] == [None, None]
    finally:
        for d in (exporter, watch):
            d.stop()


def test_a_netlink_overflow_is_reported_and_nothing_is_missed(outage: OutageHost) -> None:
    """10,000 link events while watch is not scheduled (SIGSTOP) overflow its socket (ENOBUFS):
    watch says so and re-reads every link, so the vif changes inside the storm still show."""
    watch = outage.daemon("watch", "--json")
    try:
        watch.wait(line("start"))
        outage.ip("link", "add", STORM_BRIDGE, "type", "bridge")
        detached, down = outage.plan.vifs[0].tap, outage.plan.vifs[1].tap
        flips = f"link set {STORM_BRIDGE} up\nlink set {STORM_BRIDGE} down\n" * 2500
        storm = flips + f"link set {detached} nomaster\n" + flips + f"link set {down} down\n" + flips * 2
        watch.proc.send_signal(signal.SIGSTOP)
        try:
            subprocess.run(["ip", "-n", NS, "-batch", "-"], input=storm, text=True, check=True)
        finally:
            watch.proc.send_signal(signal.SIGCONT)
        overrun = watch.wait(line("overrun"))
        assert overrun["source"] == "netlink" and "ENOBUFS" in overrun["reason"] and overrun["total"] >= 1
        watch.wait(line("transition", target=detached, to="detached"))
        watch.wait(line("transition", target=down, to="down"))
        assert watch.proc.poll() is None
    finally:
        watch.stop()
