"""The exporter keeps libvirt's side between scrapes (DeclaredCache): it must still see every
change a one-shot read would, on a real libvirtd with real guests.

* an interface hot-plugged into a running guest is a series at the next scrape (libvirt's
  device-added event marks the domain; no state or id changes);
* a libvirtd restart drops the cached connection: libvirt is down for a scrape, then back,
  and the series are all there again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import sh, wait_for
from vifscope.lab.host import LIBVIRT_SOCK, ensure_libvirtd
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e


@pytest.fixture
def metrics(lab: LabSpec, tmp_path: Path) -> Iterator[str]:
    cmd = [sys.executable, "-m", "vifscope", "exporter", "--json", "--no-checks", "--listen", "127.0.0.1:0",
           "--audit-log", str(tmp_path / "actions.jsonl"), "--declared-max-age", "3600"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())["url"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return str(resp.read().decode())


def bound_series(text: str, target: str) -> list[str]:
    return [
        line for line in text.splitlines() if line.startswith("vifscope_vif_bound{") and f'target="{target}"' in line
    ]


def _hotplugged_mac(dom: str, tap: str) -> str | None:
    doc = json.loads(sh(sys.executable, "-m", "vifscope", "status", "--json", "--domain", dom))
    return next((v["mac"] for v in doc["vifs"] if v["target"] == tap), None)


def _detach(dom: str, mac: str) -> None:
    sh("virsh", "-c", "qemu:///system", "detach-interface", dom, "bridge", "--mac", mac, "--live", check=False)


def test_hotplugged_interface_comes_and_goes_with_libvirts_events(lab: LabSpec, metrics: str) -> None:
    """Max age 1 h and no state change: only device-added / device-removed can refresh the cache."""
    dom, tap = lab.name("web1"), f"{lab.prefix}hp0"
    assert bound_series(scrape(metrics), tap) == []
    sh("virsh", "-c", "qemu:///system", "attach-interface", dom, "bridge", lab.bridge,
       "--target", tap, "--model", "virtio", "--live")  # fmt: skip
    try:
        assert wait_for(lambda: bool(bound_series(scrape(metrics), tap)), 10), "hot-plugged vif never exported"
        (line,) = bound_series(scrape(metrics), tap)
        assert f'domain="{dom}"' in line and line.endswith(" 1.0")
        mac = _hotplugged_mac(dom, tap)
        assert mac is not None
        _detach(dom, mac)  # the guest's kernel acks the ACPI unplug; libvirt then sends device-removed
        assert wait_for(lambda: _hotplugged_mac(dom, tap) is None, 20), "the guest never released the NIC"
        assert wait_for(lambda: bound_series(scrape(metrics), tap) == [], 10), "unplugged vif still exported"
    finally:
        if (left := _hotplugged_mac(dom, tap)) is not None:
            _detach(dom, left)


def test_libvirtd_restart_drops_and_reopens_the_cached_connection(lab: LabSpec, metrics: str) -> None:
    web1 = f'domain="{lab.name("web1")}"'
    assert any(web1 in line for line in scrape(metrics).splitlines() if line.startswith("vifscope_vif_bound{"))
    os.kill(int(Path("/run/libvirtd.pid").read_text().strip()), signal.SIGTERM)
    try:
        assert wait_for(lambda: not LIBVIRT_SOCK.exists(), 15), "libvirtd did not stop"
        assert 'vifscope_source_up{source="libvirt"} 0.0' in scrape(metrics)
    finally:
        ensure_libvirtd(lambda line: print(line, file=sys.stderr))
    assert wait_for(lambda: 'vifscope_source_up{source="libvirt"} 1.0' in scrape(metrics), 30)
    text = scrape(metrics)
    assert any(web1 in line for line in text.splitlines() if line.startswith("vifscope_vif_bound{"))
