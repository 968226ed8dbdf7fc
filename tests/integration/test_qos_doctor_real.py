"""qos.kernel_unsupported on the real libvirtd: a defined domain with ``<bandwidth>`` cannot
start on this kernel (no sfq, no police), doctor says why and gives the exact fix, the fix run
as shown makes doctor quiet and the domain starts (paused: no guest code runs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vifscope.lab.host import ensure_libvirtd
from vifscope.sources.kernel.kconfig import read_shaping

pytestmark = pytest.mark.integration

URI = "qemu:///system"
NAME, MAC = "vs-q-bw", "52:54:00:78:00:01"
XML = f"""<domain type='qemu'>
  <name>{NAME}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/><apic/></features>
  <devices>
    <interface type='ethernet'>
      <mac address='{MAC}'/>
      <target dev='vs-q-bwt0' managed='yes'/>
      <bandwidth><inbound average='1000' peak='2000' burst='256'/><outbound average='500'/></bandwidth>
      <model type='virtio'/>
    </interface>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, check=False, timeout=60)


def findings() -> list[dict[str, object]]:
    cmd = [sys.executable, "-m", "vifscope", "-c", URI, "doctor", "--json"]
    doc = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120).stdout)
    return [f for f in doc["findings"] if f["domain"] == NAME and str(f["check"]).startswith("qos.")]


@pytest.fixture
def domain(tmp_path: Path) -> Iterator[None]:
    ensure_libvirtd()
    shaping = read_shaping()
    if shaping is None or shaping.sfq:
        pytest.skip("needs a kernel that publishes its config and has no sfq (this lab's)")
    xml = tmp_path / f"{NAME}.xml"
    xml.write_text(XML)
    assert virsh("define", str(xml)).returncode == 0
    try:
        yield
    finally:
        virsh("destroy", NAME)
        virsh("undefine", NAME)


def test_kernel_unsupported_then_fixed(domain: None) -> None:
    start = virsh("start", "--paused", NAME)
    assert start.returncode != 0 and "Specified qdisc kind is unknown" in start.stderr  # sfq, for <inbound>
    (found,) = findings()
    assert (found["check"], found["severity"]) == ("qos.kernel_unsupported", "error")
    (argv,) = found["fix_argv"]  # type: ignore[misc]
    assert argv == ["virsh", "-c", URI, "domiftune", "--config", "--inbound", "0", "--outbound", "0", "--", NAME, MAC]
    assert subprocess.run(argv, capture_output=True, check=False, timeout=60).returncode == 0
    assert findings() == []
    assert virsh("start", "--paused", NAME).returncode == 0
