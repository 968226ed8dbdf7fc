"""``qos:`` in an apply file on the lab's running TCG guest ``web1``: a NIC plugged with
``qos: {inbound, outbound, backend: tc}`` is verified with the QoS verdict ``enforced``; a second
apply changes nothing; a new rate plans exactly that one QoS change (tc commands, as ``qos set``
runs them); the export of what the file names plans no change; backend libvirt is refused on
this kernel (no sch_sfq / act_police) before anything runs; a ``--confirm-within`` apply rolled
back puts the previous rate back; unplugging the NIC clears its tc objects (the ifb device) first;
a QoS step tc rejects fails the apply, which rolls back cleanly.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Result, vifscope
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e


def _file(lab: LabSpec, mac: str, qos: str | None, present: bool = True) -> str:
    if not present:
        nic = f"{{mac: '{mac}', state: absent}}"
    else:
        nic = f"{{network: {lab.network}, mac: '{mac}'" + (f", qos: {qos}}}" if qos else "}")
    return f"domains:\n  {lab.name('web1')}:\n    interfaces:\n      - {nic}\n"


def _apply(tmp: Path, text: str, *extra: str) -> Result:
    (tmp / "qos.yaml").write_text(text)
    audit = ("--audit-log", str(tmp / "a.jsonl"), "--xml-dir", str(tmp), "--pending-dir", str(tmp / "pending"))
    return vifscope("apply", str(tmp / "qos.yaml"), *audit, "--json", *extra)


def _qos_of(lab: LabSpec, mac: str) -> dict[str, Any]:
    shown = json.loads(vifscope("qos", "show", "--json").out)
    return next(v for v in shown["vifs"] if v["domain"] == lab.name("web1") and v["mac"] == mac)


def _ifb_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True, check=False).returncode == 0


def test_declared_qos_is_enforced_idempotent_edited_exported_and_rolled_back(lab: LabSpec, tmp_path: Path) -> None:
    octet = int(lab.net.split(".")[1]) & 0xFF
    mac = f"52:54:00:{octet:02x}:41:01"
    ifb = ""
    try:
        libvirt = _apply(tmp_path, _file(lab, mac, "{inbound: 1000}"))  # backend libvirt: this kernel cannot
        assert (libvirt.rc, libvirt.doc["status"]) == (1, "refused"), libvirt.out + libvirt.err
        assert "no sch_sfq" in libvirt.doc["refused"][0] and "use backend: tc" in libvirt.doc["refused"][0]
        assert (
            mac not in subprocess.run(["virsh", "domiflist", lab.name("web1")], capture_output=True, text=True).stdout
        )

        first = _apply(tmp_path, _file(lab, mac, "{inbound: 1000, outbound: 800, backend: tc}"))
        assert (first.rc, first.doc["status"]) == (0, "verified"), first.out + first.err
        assert [(c["kind"], c["op"]) for c in first.doc["changes"]] == [("vif", "create"), ("qos", "create")]
        row = _qos_of(lab, mac)
        assert (row["verdict"], row["inbound"]["declared"]["average"]) == ("enforced", 1000), row
        ifindex = Path("/sys/class/net", row["target"], "ifindex").read_text().strip()
        ifb = f"vsq-{ifindex}"
        assert _ifb_exists(ifb)

        again = _apply(tmp_path, _file(lab, mac, "{inbound: 1000, outbound: 800, backend: tc}"))
        assert (again.rc, again.doc["status"]) == (0, "nothing-to-do"), again.out

        edited = _file(lab, mac, "{inbound: 2000, outbound: 800, backend: tc}")
        plan = _apply(tmp_path, edited, "--plan")
        assert plan.rc == 1
        [change] = plan.doc["changes"]
        assert (change["kind"], change["op"], change["what"]) == ("qos", "change", ["qos (tc) inbound 1000 → 2000"])
        [step] = change["steps"]
        assert any("rate 2000kbps" in c for c in step["commands"]), step
        changed = _apply(tmp_path, edited)
        assert (changed.rc, changed.doc["status"]) == (0, "verified"), changed.out + changed.err
        assert (_qos_of(lab, mac)["verdict"], _qos_of(lab, mac)["inbound"]["declared"]["average"]) == ("enforced", 2000)

        exported = vifscope("export", "--names-from", str(tmp_path / "qos.yaml"))
        assert exported.rc == 0, exported.err
        assert "backend: tc" in exported.out and "inbound: 2000" in exported.out, exported.out
        (tmp_path / "export.yaml").write_text(exported.out)
        back = vifscope("apply", str(tmp_path / "export.yaml"), "--plan", "--json")
        assert (back.rc, back.doc["changes"], back.doc["refused"]) == (0, [], []), back.out

        switch = _apply(tmp_path, _file(lab, mac, "{inbound: 2000}"), "--plan")
        assert switch.rc == 1 and "set by backend tc, the file says libvirt" in switch.doc["refused"][0], switch.out

        pending = _apply(
            tmp_path, _file(lab, mac, "{inbound: 3000, outbound: 800, backend: tc}"), "--confirm-within", "120"
        )
        assert (pending.rc, pending.doc["status"]) == (0, "verified"), pending.out + pending.err
        assert _qos_of(lab, mac)["inbound"]["declared"]["average"] == 3000
        undone = vifscope("apply", "--rollback", "--pending-dir", str(tmp_path / "pending"), "--json")
        assert (undone.rc, undone.doc["status"]) == (0, "rolled-back"), undone.out + undone.err
        row = _qos_of(lab, mac)
        assert (row["verdict"], row["inbound"]["declared"]["average"]) == ("enforced", 2000), row
    finally:
        gone = _apply(tmp_path, _file(lab, mac, None, present=False))
        assert gone.rc == 0, gone.out + gone.err
    assert not ifb or not _ifb_exists(ifb), f"{ifb} outlived the unplugged NIC"


def test_a_qos_step_tc_rejects_rolls_the_whole_apply_back(lab: LabSpec, tmp_path: Path) -> None:
    """A burst tc refuses (``Illegal "burst"``): ``qos set``'s path rolls its own part back, the
    apply fails and rolls back the NIC it plugged; nothing of either is left."""
    octet = int(lab.net.split(".")[1]) & 0xFF
    mac = f"52:54:00:{octet:02x}:41:02"
    domain = lab.name("web1")
    try:
        bad = _apply(tmp_path, _file(lab, mac, "{inbound: {average: 1000, burst: 99999999}, backend: tc}"))
        assert (bad.rc, bad.doc["status"]) == (1, "rolled-back"), bad.out + bad.err
        assert "tc class add dev" in bad.doc["error"] and "rolled-back" in bad.doc["error"], bad.doc["error"]
        assert [c["kind"] for c in bad.doc["rollback"]] == ["vif"]  # the plug undone; the QoS undid itself
        nics = subprocess.run(["virsh", "domiflist", domain], capture_output=True, text=True, check=True).stdout
        assert mac not in nics.lower()
        meta = subprocess.run(
            ["virsh", "metadata", domain, "https://vifscope.dev/xmlns/qos/1"], capture_output=True, text=True
        )
        assert mac not in meta.stdout
        records = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
        assert {(r["actor"], r["phase"], r["result"]) for r in records} >= {
            ("qos", "apply", "failed"), ("qos", "rollback", "rolled-back"), ("apply", "rollback", "rolled-back"),
        }  # fmt: skip
    finally:
        gone = _apply(tmp_path, _file(lab, mac, None, present=False))
        assert gone.rc == 0, gone.out + gone.err
