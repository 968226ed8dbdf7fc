"""A source the answer needs goes away for real: exit 3 with one clear line, not a traceback."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import sh, vif_of, vifscope, wait_for
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
