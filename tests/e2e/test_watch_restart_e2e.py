"""watch survives the real daemons restarting. These stop libvirtd / Open vSwitch for every
run on the host, so they are run alone (not alongside other e2e suites).

test_watch_e2e.py::test_libvirt_connection_lost_and_back covers the same watch code paths
through a socket proxy without disturbing anyone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import sh, vif_of, vifscope, wait_for
from tests.e2e.watch_helpers import heal_of, transition, watching
from vifscope.lab.host import LIBVIRT_SOCK, OVS_CTL, ensure_libvirtd, ensure_ovs, ovs_running
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e

Target = Callable[..., str]


def _log(line: str) -> None:
    print(line, file=sys.stderr)


def _stop_libvirtd() -> None:
    pid = int(Path("/run/libvirtd.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not LIBVIRT_SOCK.exists(), 15), "libvirtd did not stop"


def test_watch_survives_libvirtd_restart(lab: LabSpec, target: Target, tmp_path: Path) -> None:
    tap = target("web1")
    with watching(lab, "--heal", "--audit-log", str(tmp_path / "actions.jsonl")) as w:
        _stop_libvirtd()
        try:
            _, down = w.wait(lambda e: e["event"] == "source" and e["source"] == "libvirt", 15)
            assert down["state"] == "down" and "libvirtd" in down["hint"]
            sh("ip", "link", "set", tap, "nomaster")
            w.wait(transition(lab.name("web1"), "detached"), 5)  # the kernel side is still watched
            w.drain(1.5)
            assert not [e for e in w.events("heal") if e["target"] == tap], "no heal while libvirt is down"
        finally:
            ensure_libvirtd(_log)
        w.wait(lambda e: e["event"] == "source" and e["source"] == "libvirt" and e["state"] == "up", 45)
        # libvirtd re-plugs detached bridge taps of running domains when it reconnects to them
        # (qemuProcessReconnect), or heal does: either way web1 ends bound and watch says so.
        w.wait(transition(lab.name("web1"), "bound"), 20)
        assert w.proc.poll() is None, "watch must keep running across the restart"
    assert w.proc.returncode == 0
    assert vif_of(vifscope("status", "--json").doc, lab.name("web1"))["status"] == "bound"


def test_watch_survives_ovs_restart(lab: LabSpec, target: Target, tmp_path: Path) -> None:
    tap, dom = target("ovs1"), lab.name("ovs1")
    with watching(lab, "--heal", "--audit-log", str(tmp_path / "actions.jsonl")) as w:
        subprocess.run([str(OVS_CTL), "stop"], check=True, capture_output=True)
        try:
            _, down = w.wait(lambda e: e["event"] == "source" and e["source"] == "ovs", 15)
            assert down["state"] == "down"
            _, unverified = w.wait(transition(dom, "unverified"), 10)
            assert "source_unavailable" in unverified["problems"]
        finally:
            ensure_ovs(_log)
        assert ovs_running()
        w.wait(lambda e: e["event"] == "source" and e["source"] == "ovs" and e["state"] == "up", 45)
        w.wait(transition(dom, "bound"), 20)  # OVSDB kept the port; nothing to heal
        assert not [e for e in w.events("heal") if e["target"] == tap]
        sh("ovs-vsctl", "del-port", lab.ovs_bridge, tap)  # and the OVS monitor works after the restart
        _, heal = w.wait(heal_of(dom, tap), 10)
        assert heal["result"] == "ok"
    assert w.proc.returncode == 0
