"""``mac: auto`` in an apply file on the real host: a paused guest gets a NIC with a MAC
allocated from the pool (recorded in the store for it), and a second apply reuses that NIC
(nothing to do) rather than allocating again. A private SQLite store (VIFSCOPE_DB), an
isolated network and a paused domain named with the lab prefix, removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import SPEC, Result, sh, vifscope
from vifscope.lab.host import ensure_libvirtd

pytestmark = pytest.mark.e2e

NET = SPEC.name("manet")
NETBR = SPEC.name("manetbr")
VM = SPEC.name("mavm")
POOL_PREFIX = "52:54:00:5c:92"
FILE = f"""networks:
  - {{name: {NET}, mode: isolated, bridge: {NETBR}, ipv4: {{address: {SPEC.net}.63.1/24}}, autostart: false}}
domains:
  {VM}:
    interfaces:
      - {{network: {NET}, mac: auto, pool: p2test}}
"""


def _cleanup() -> None:
    for argv in (
        ["virsh", "destroy", VM],
        ["virsh", "undefine", VM],
        ["virsh", "net-destroy", NET],
        ["virsh", "net-undefine", NET],
    ):
        subprocess.run(argv, capture_output=True, check=False)


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("apply e2e needs root")
    ensure_libvirtd(print)
    _cleanup()
    (tmp_path / "host.yaml").write_text(FILE)
    try:
        yield tmp_path
    finally:
        _cleanup()


def run(tmp: Path, *args: str) -> Result:
    return vifscope(*args, env={"VIFSCOPE_DB": f"sqlite:///{tmp / 'mac.db'}"})


def apply(tmp: Path, *extra: str) -> Result:
    audit = ("--audit-log", str(tmp / "audit.jsonl"), "--xml-dir", str(tmp))
    return run(tmp, "apply", str(tmp / "host.yaml"), *audit, "--json", *extra)


def guest_xml() -> str:
    return f"""<domain type='qemu'><name>{VM}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<features><acpi/><apic/></features><devices><memballoon model='none'/></devices></domain>"""


def test_auto_mac_is_allocated_from_the_pool_once_then_reused(tmp: Path) -> None:
    assert run(tmp, "mac", "pool", "add", "p2test", "--prefix", POOL_PREFIX).rc == 0
    net_only = apply(tmp)  # the guest does not exist yet: refused, nothing allocated
    assert net_only.rc == 1
    (tmp / "vm.xml").write_text(guest_xml())
    sh("virsh", "define", str(tmp / "vm.xml"))

    plan = apply(tmp, "--plan")
    assert plan.rc == 1
    assert [c["name"] for c in plan.doc["changes"] if c["kind"] == "vif"] == [f"{VM} auto"]

    # applied to the shut-off guest's definition, then rolled back before confirmation: the
    # NIC goes, its MAC back to the store (a live unplug would need a guest OS to let it go)
    pending = ("--pending-dir", str(tmp / "pending"))
    tried = apply(tmp, "--confirm-within", "120", *pending)
    assert (tried.rc, tried.doc["status"]) == (0, "verified"), tried.out + tried.err
    [first] = [c["name"].split()[1] for c in tried.doc["changes"] if c["kind"] == "vif"]
    assert run(tmp, "apply", "--rollback", *pending).rc == 0
    assert "<interface " not in sh("virsh", "dumpxml", VM)
    released = run(tmp, "mac", "list", "--json").doc["macs"]
    assert [r["state"] for r in released if r["mac"] == first] == ["quarantined"], released
    sh("virsh", "start", "--paused", VM)  # from here live and persistent

    done = apply(tmp)
    assert (done.rc, done.doc["status"]) == (0, "verified"), done.out + done.err
    [vif] = [c["name"].split()[1] for c in done.doc["changes"] if c["kind"] == "vif"]
    assert vif.startswith(POOL_PREFIX) and vif != first  # the released one is in quarantine
    assert f"<mac address='{vif}'/>" in sh("virsh", "dumpxml", VM)
    listed = run(tmp, "mac", "list", "--json")
    assert any(r["mac"] == vif and r["domain"] == VM for r in listed.doc["macs"]), listed.out

    again = apply(tmp)
    assert (again.rc, again.doc["status"]) == (0, "nothing-to-do"), again.out + again.err
    assert sh("virsh", "dumpxml", VM).count("<interface ") == 1
