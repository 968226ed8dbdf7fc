"""``qos set --backend tc`` on the real libvirtd: a paused TCG domain (its tap exists, no guest
code runs) gets vifscope's shaping; the policy lands in the domain's own definition (live and
persistent metadata, read back by another process's ``qos show``); ``--clear`` removes the
kernel objects and the metadata.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vifscope.lab.host import ensure_libvirtd
from vifscope.model.qospolicy import QOS_NS

pytestmark = pytest.mark.integration

URI = "qemu:///system"
PREFIX = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-r-")
NAME, MAC, TAP = f"{PREFIX}qset", "52:54:00:90:01:01", f"{PREFIX}qst0"
XML = f"""<domain type='qemu'>
  <name>{NAME}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/><apic/></features>
  <devices>
    <interface type='ethernet'>
      <mac address='{MAC}'/>
      <target dev='{TAP}' managed='yes'/>
      <model type='virtio'/>
    </interface>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, check=False, timeout=60)


def vifscope(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "vifscope", "-c", URI, *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)


def qdiscs() -> str:
    return subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def paused(tmp_path: Path) -> Iterator[None]:
    ensure_libvirtd()
    xml = tmp_path / f"{NAME}.xml"
    xml.write_text(XML)
    assert virsh("define", str(xml)).returncode == 0
    try:
        started = virsh("start", "--paused", NAME)
        assert started.returncode == 0, started.stderr
        yield
    finally:
        # an ifb outlives the tap it shaped for (only clear / reapply remove it): remove ours
        for ifb in re.findall(r'ifb="(vsq-\d+)"', virsh("dumpxml", NAME).stdout):
            subprocess.run(["ip", "link", "del", "dev", ifb], capture_output=True, check=False)
        virsh("destroy", NAME)
        virsh("undefine", NAME)


def _ifb() -> str:
    """The ifb vifscope made for the domain's tap (named in the live metadata)."""
    (name,) = re.findall(r'ifb="(vsq-\d+)"', virsh("dumpxml", NAME).stdout)
    return name


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True, check=False).returncode == 0


def test_clear_on_a_destroyed_domain_removes_the_ifb_it_left_and_doctor_saw(paused: None, tmp_path: Path) -> None:
    audit = str(tmp_path / "audit.jsonl")
    done = vifscope("qos", "set", NAME, "--mac", MAC, "--backend", "tc", "--outbound", "500", "--audit-log", audit,
                    "--json")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    ifb = _ifb()
    assert virsh("destroy", NAME).returncode == 0  # nobody watching: the ifb stays behind
    assert _link_exists(ifb)

    def orphans() -> list[dict[str, object]]:
        doc = json.loads(vifscope("doctor", "--json").stdout)
        return [f for f in doc["findings"] if f["check"] == "qos.orphan_ifb" and f["subject"] == ifb]

    (found,) = orphans()
    assert found["fix_argv"] == [["ip", "link", "del", "dev", ifb]]
    cleared = vifscope("qos", "set", NAME, "--mac", MAC, "--backend", "tc", "--clear", "--audit-log", audit, "--json")
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    assert json.loads(cleared.stdout)["status"] == "cleared"
    assert not _link_exists(ifb)
    assert "vifscope:qos" not in virsh("dumpxml", "--inactive", NAME).stdout
    assert orphans() == []


def test_policy_travels_in_the_domain_definition_and_clear_removes_it(paused: None, tmp_path: Path) -> None:
    audit = str(tmp_path / "audit.jsonl")
    done = vifscope("qos", "set", NAME, "--mac", MAC, "--backend", "tc", "--inbound", "1000,2000", "--outbound", "500",
                    "--audit-log", audit, "--json")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["status"] == "enforced"
    for flag in ((), ("--inactive",)):  # live and persistent
        assert f'<vifscope:qos xmlns:vifscope="{QOS_NS}">' in virsh("dumpxml", *flag, NAME).stdout

    shown = vifscope("qos", "-d", NAME, "--json")
    (vif,) = json.loads(shown.stdout)["vifs"]
    assert (vif["read_from"], vif["verdict"]) == ("vifscope-metadata", "enforced")
    assert vif["inbound"]["enforced"]["peak"] == 2000
    assert vif["outbound"]["enforced"]["mechanism"] == "ifb-htb"

    subprocess.run(["tc", "class", "change", "dev", TAP, "parent", "1:", "classid", "1:1", "htb", "rate", "3000kbps"],
                   check=True)  # fmt: skip
    drifted = vifscope("qos", "-d", NAME, "--json")
    assert drifted.returncode == 1
    assert json.loads(drifted.stdout)["vifs"][0]["inbound"]["verdict"] == "drift"

    cleared = vifscope("qos", "set", NAME, "--mac", MAC, "--backend", "tc", "--clear", "--audit-log", audit, "--json")
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    left = qdiscs()
    assert f"htb 1: dev {TAP} " not in left and f"ingress ffff: dev {TAP} " not in left
    assert "vifscope:qos" not in virsh("dumpxml", "--inactive", NAME).stdout
    assert json.loads(vifscope("qos", "-d", NAME, "--json").stdout)["vifs"][0]["verdict"] == "none"


def test_watch_heal_rebuilds_the_policy_on_the_new_tap_after_a_restart(paused: None, tmp_path: Path) -> None:
    audit = str(tmp_path / "audit.jsonl")
    done = vifscope("qos", "set", NAME, "--mac", MAC, "--backend", "tc", "--inbound", "1000", "--outbound", "500",
                    "--audit-log", audit, "--json")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    cmd = [sys.executable, "-m", "vifscope", "-c", URI, "watch", "--heal", "--json", "-d", NAME, "--audit-log", audit]
    watch = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = threading.Timer(120, watch.kill)  # no event after 2 min: the lines end, the test fails
    deadline.start()
    try:
        assert watch.stdout is not None
        lines = iter(watch.stdout.readline, "")
        assert next(d for d in map(json.loads, lines) if d["event"] == "start")
        old_ifb = _ifb()
        assert virsh("destroy", NAME).returncode == 0
        released = next(d for d in map(json.loads, lines) if d["event"] == "qos-release")
        assert (released["object"], released["device"], released["status"]) == ("ifb", old_ifb, "removed")
        assert not _link_exists(old_ifb)
        assert virsh("start", "--paused", NAME).returncode == 0  # a new tap: none of vifscope's qdiscs
        healed = next(d for d in map(json.loads, lines) if d["event"] == "qos-heal")
    finally:
        deadline.cancel()
        watch.terminate()
        watch.wait(timeout=30)
    assert (healed["domain"], healed["was"], healed["status"]) == (NAME, "missing", "enforced"), healed
    (vif,) = json.loads(vifscope("qos", "-d", NAME, "--json").stdout)["vifs"]
    assert (vif["read_from"], vif["verdict"]) == ("vifscope-metadata", "enforced")
