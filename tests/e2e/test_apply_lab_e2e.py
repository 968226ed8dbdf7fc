"""``vifscope apply`` on the lab's running TCG guests: a NIC declared in a file is plugged
into a running guest on the lab's isolated network, gets a DHCP lease and answers ping; a
second apply changes nothing; changing that network's DHCP range (a restart, which makes
libvirt drop every guest's tap off the bridge) keeps the guests plugged and answering; the
file with the NIC ``state: absent`` and the old range puts the lab back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Result, sh, vifscope, wait_for
from tests.e2e.test_attach_e2e import answers_ping, lease_of
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e


def _file(lab: LabSpec, mac: str, dhcp_end: int, present: bool = True) -> str:
    s = lab.subnet(2)
    nic = f"{{network: {lab.network}, mac: '{mac}'}}" if present else f"{{mac: '{mac}', state: absent}}"
    return (
        f"networks:\n  - name: {lab.network}\n    ipv4: {{address: {s}.1/24, dhcp: [{s}.100, {s}.{dhcp_end}]}}\n"
        f"    autostart: false\n"
        f"domains:\n  {lab.name('web1')}:\n    interfaces:\n      - {nic}\n"
    )


def _apply(tmp: Path, text: str) -> Result:
    (tmp / "lab.yaml").write_text(text)
    return vifscope(
        "apply", str(tmp / "lab.yaml"), "--audit-log", str(tmp / "a.jsonl"), "--xml-dir", str(tmp), "--json"
    )


def test_a_declared_nic_gets_a_lease_and_a_network_change_keeps_every_guest_plugged(
    lab: LabSpec, tmp_path: Path
) -> None:
    octet = int(lab.net.split(".")[1]) & 0xFF
    mac = f"52:54:00:{octet:02x}:40:01"
    try:
        first = _apply(tmp_path, _file(lab, mac, 200))
        assert (first.rc, first.doc["status"]) == (0, "verified"), first.out + first.err
        assert [(c["kind"], c["op"]) for c in first.doc["changes"]] == [("vif", "create")]
        assert wait_for(lambda: lease_of(lab.network, mac) is not None, 120), "no DHCP lease for the new NIC"
        addr = lease_of(lab.network, mac)
        assert addr is not None and wait_for(lambda: answers_ping(addr, lab.network_bridge), 30)
        assert _apply(tmp_path, _file(lab, mac, 200)).doc["status"] == "nothing-to-do"

        changed = _apply(tmp_path, _file(lab, mac, 150))
        assert (changed.rc, changed.doc["status"]) == (0, "verified"), changed.out + changed.err
        [change] = changed.doc["changes"]
        replugged = [s["command"] for s in change["steps"] if s.get("command", "").startswith("ip link set")]
        assert len(replugged) >= 3  # db1's, multi's and web1's new NIC, off the re-made bridge
        assert f"{lab.subnet(2)}.150" in sh("virsh", "net-dumpxml", lab.network)
        assert wait_for(lambda: answers_ping(addr, lab.network_bridge), 30), "the new NIC lost the bridge"
        multi = f"{lab.subnet(2)}.12"  # the lab's 'multi' guest, static on the same network
        assert wait_for(lambda: answers_ping(multi, lab.network_bridge), 30), "multi lost the bridge"
    finally:
        back = _apply(tmp_path, _file(lab, mac, 200, present=False))
        assert back.rc == 0, back.out + back.err
    assert mac not in sh("virsh", "domiflist", lab.name("web1")).lower()
