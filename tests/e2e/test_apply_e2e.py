"""``vifscope apply`` / ``export`` on the real host: real libvirtd, kernel bridges, OVS
(netdev datapath), and a paused QEMU guest whose tap sits on an applied network.

From bare: one apply creates a Linux bridge (with a veth uplink), an OVS bridge and an
isolated network; a second apply changes nothing; an edit plans exactly that change; a
network whose address clashes makes libvirt refuse ``net-start`` midway and the whole
apply rolls back, checked by comparing ``vifscope export`` before and after. Changing a
network a running guest uses keeps its tap plugged. Names use the lab prefix
(VIFSCOPE_TEST_LAB_PREFIX), addresses the lab net (VIFSCOPE_TEST_LAB_NET); the lab's
guests are not needed (no ``lab`` fixture), so nothing boots but one paused domain.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import SPEC, Result, sh, vifscope
from vifscope.lab.host import ensure_libvirtd, ensure_ovs

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Names:
    br: str = SPEC.name("apbr")
    ovs: str = SPEC.name("apovs")
    up: str = SPEC.name("apup0")  # the Linux bridge's uplink (a veth)
    peer: str = SPEC.name("apup1")
    net: str = SPEC.name("apnet")
    netbr: str = SPEC.name("apnetbr")
    clash: str = SPEC.name("apclash")
    clashbr: str = SPEC.name("apclbr")
    vm: str = SPEC.name("apvm")
    tap: str = SPEC.name("aptap0")
    subnet: str = f"{SPEC.net}.40"


N = Names()


def file_text(mtu: int = 1400, dhcp: tuple[int, int] = (100, 200), clash: bool = False) -> str:
    s = N.subnet
    text = f"""
bridges:
  - {{name: {N.br}, kind: linux, stp: false, mtu: {mtu}, uplinks: [{N.up}]}}
  - {{name: {N.ovs}, kind: ovs, datapath: netdev, stp: false}}
networks:
  - name: {N.net}
    mode: isolated
    bridge: {N.netbr}
    ipv4: {{address: {s}.1/24, dhcp: [{s}.{dhcp[0]}, {s}.{dhcp[1]}]}}
    autostart: false
"""
    if clash:  # the same subnet as N.net: libvirt defines it, then refuses to start it
        text += f"  - {{name: {N.clash}, bridge: {N.clashbr}, ipv4: {{address: {s}.1/24}}, autostart: false}}\n"
    return text


def _cleanup() -> None:
    for argv in (
        ["virsh", "destroy", N.vm],
        ["virsh", "undefine", N.vm],
        *(["virsh", verb, net] for net in (N.net, N.clash) for verb in ("net-destroy", "net-undefine")),
        ["ip", "link", "del", "dev", N.br],
        ["ip", "link", "del", "dev", N.up],
        ["ovs-vsctl", "--if-exists", "del-br", N.ovs],
    ):
        subprocess.run(argv, capture_output=True, check=False)


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("apply e2e needs root")
    ensure_libvirtd(print)
    ensure_ovs(print)
    _cleanup()
    sh("ip", "link", "add", "name", N.up, "type", "veth", "peer", "name", N.peer)
    try:
        yield tmp_path
    finally:
        _cleanup()


def apply(tmp: Path, text: str, *extra: str) -> Result:
    path = tmp / "host.yaml"
    path.write_text(text)
    return vifscope("apply", str(path), "--audit-log", str(tmp / "audit.jsonl"), "--xml-dir", str(tmp), *extra)


def export(names: Path) -> str:
    res = vifscope("export", "--names-from", str(names), "--json")
    assert res.rc == 0, res.err
    return res.out


def link(name: str) -> dict[str, object]:
    found: list[dict[str, object]] = json.loads(sh("ip", "-j", "-d", "link", "show", "dev", name))
    return found[0]


def test_apply_from_bare_is_idempotent_plans_edits_exactly_and_rolls_back_a_clash(bare: Path) -> None:
    plan = apply(bare, file_text(), "--plan", "--json")
    assert plan.rc == 1, plan.err
    assert [(c["kind"], c["name"], c["op"]) for c in plan.doc["changes"]] == [
        ("bridge", N.br, "create"),
        ("bridge", N.ovs, "create"),
        ("network", N.net, "create"),
    ]
    done = apply(bare, file_text(), "--json")
    assert (done.rc, done.doc["status"]) == (0, "verified"), done.out + done.err
    assert link(N.br)["mtu"] == 1400 and link(N.up)["master"] == N.br
    assert sh("ovs-vsctl", "get", "Bridge", N.ovs, "datapath_type").strip() == "netdev"
    assert "Active:         yes" in sh("virsh", "net-info", N.net)

    again = apply(bare, file_text(), "--json")
    assert (again.rc, again.doc["status"], again.doc["changes"]) == (0, "nothing-to-do", [])
    assert apply(bare, file_text(), "--plan").rc == 0

    edit = apply(bare, file_text(dhcp=(150, 160)), "--plan", "--json")
    assert edit.rc == 1
    [change] = edit.doc["changes"]
    assert (change["name"], change["op"]) == (N.net, "change")
    s = N.subnet
    assert change["what"][0] == f"ipv4 {s}.1/24 dhcp {s}.100-{s}.200 → {s}.1/24 dhcp {s}.150-{s}.160"

    # the export of the host, applied, plans nothing (round trip)
    exported = vifscope("export", "--names-from", str(bare / "host.yaml"))
    assert exported.rc == 0
    assert apply(bare, exported.out, "--plan").rc == 0
    apply(bare, file_text())  # host.yaml back to the applied file

    names = bare / "names.yaml"  # every object the failing file names
    names.write_text(file_text(clash=True))
    before = export(names)
    failed = apply(bare, file_text(mtu=1300, dhcp=(150, 160), clash=True), "--json")
    assert (failed.rc, failed.doc["status"]) == (1, "rolled-back"), failed.out + failed.err
    assert "net-start" in failed.doc["error"]
    assert export(names) == before  # the exact earlier state (the clash network absent again)
    assert link(N.br)["mtu"] == 1400
    assert subprocess.run(["virsh", "net-info", N.clash], capture_output=True).returncode != 0
    lines = [json.loads(x) for x in (bare / "audit.jsonl").read_text().splitlines()]
    mine = [x for x in lines if x["run"] == failed.doc["run"]]
    assert {x["actor"] for x in mine} == {"apply"}
    assert [x["result"] for x in mine if x["phase"] == "apply"][-1] == "failed"
    assert {x["result"] for x in mine if x["phase"] == "rollback"} == {"rolled-back"}


def _guest_xml() -> str:
    return f"""<domain type='qemu'><name>{N.vm}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os><features><acpi/><apic/></features>
<devices><interface type='network'><mac address='52:54:00:88:40:01'/><source network='{N.net}'/>
<model type='virtio'/><target dev='{N.tap}'/><rom enabled='no'/></interface><memballoon model='none'/></devices>
</domain>"""


def test_changing_a_network_a_running_guest_uses_keeps_its_tap_plugged(bare: Path) -> None:
    assert apply(bare, file_text()).rc == 0
    (bare / "vm.xml").write_text(_guest_xml())
    sh("virsh", "define", str(bare / "vm.xml"))
    sh("virsh", "start", "--paused", N.vm)  # its tap exists; no guest code runs
    assert link(N.tap)["master"] == N.netbr

    res = apply(bare, file_text(dhcp=(120, 130)), "--json")
    assert (res.rc, res.doc["status"]) == (0, "verified"), res.out + res.err
    [change] = res.doc["changes"]
    assert [s["command"] for s in change["steps"][-3:]] == [
        f"virsh -c qemu:///system net-destroy {N.net}",
        f"virsh -c qemu:///system net-start {N.net}",
        f"ip link set dev {N.tap} master {N.netbr}",
    ]
    assert link(N.tap)["master"] == N.netbr  # libvirt alone leaves it off the new bridge
    status = vifscope("status", "-d", N.vm, "--json")
    assert [v["status"] for v in status.doc["vifs"]] == ["bound"]


def test_a_bridge_deleted_between_apply_and_verify_is_rolled_back_to_the_checkpoint(bare: Path) -> None:
    """Another hand deletes the bridge right after apply changed it: verification fails and
    rollback re-creates it as the checkpoint had it (mtu, stp, uplink), the network as well."""
    from vifscope.actions.audit import AuditLog
    from vifscope.actions.declare.load import parse_desired
    from vifscope.actions.declare.run import run_apply
    from vifscope.model.desired import HostState
    from vifscope.sources.hoststate import read_state

    assert apply(bare, file_text()).rc == 0
    names = bare / "host.yaml"
    before = export(names)
    reads: list[int] = []

    def read_then_delete(uri: str) -> HostState:
        reads.append(1)
        if len(reads) == 2:  # the first look after applying: the bridge is gone
            sh("ip", "link", "del", "dev", N.br)
        return read_state(uri)

    desired = parse_desired(file_text(mtu=1300, dhcp=(150, 160)))
    out = run_apply(
        desired, "qemu:///system", read=read_then_delete, audit=AuditLog(bare / "audit.jsonl"), settle=1.0,
        xml_dir=str(bare),
    )  # fmt: skip
    assert out.status == "rolled-back", out
    assert f"bridge {N.br}" in (out.error or "")
    assert [(c.name, c.op) for c in out.rollback][:1] == [(N.br, "create")]
    assert export(names) == before
    assert link(N.up)["master"] == N.br and link(N.br)["mtu"] == 1400


def _guest_file(second: str, third: str = "") -> str:
    """file_text plus the guest's NICs: its first one as defined, a second plugged by apply."""
    nics = f"      - {{network: {N.net}, mac: '52:54:00:88:40:01'}}\n      - {{{second}, mac: '52:54:00:88:40:02'}}\n"
    if third:
        nics += f"      - {{{third}, mac: '52:54:00:88:40:03'}}\n"
    return file_text() + f"domains:\n  {N.vm}:\n    interfaces:\n{nics}"


def test_guest_nics_are_plugged_moved_and_a_failed_plug_rolls_the_move_back(bare: Path) -> None:
    assert apply(bare, file_text()).rc == 0
    (bare / "vm.xml").write_text(_guest_xml())
    sh("virsh", "define", str(bare / "vm.xml"))
    sh("virsh", "start", "--paused", N.vm)

    plug = apply(bare, _guest_file(f"bridge: {N.br}"), "--json")
    assert (plug.rc, plug.doc["status"]) == (0, "verified"), plug.out + plug.err
    assert [(c["kind"], c["op"]) for c in plug.doc["changes"]] == [("vif", "create")]
    vifs = vifscope("status", "-d", N.vm, "--json").doc["vifs"]
    assert [(v["mac"], v["bridge"], v["status"]) for v in vifs] == [
        ("52:54:00:88:40:01", N.netbr, "bound"),
        ("52:54:00:88:40:02", N.br, "bound"),
    ]
    assert "52:54:00:88:40:02" in sh("virsh", "dumpxml", "--inactive", N.vm)  # --config too
    assert apply(bare, _guest_file(f"bridge: {N.br}"), "--json").doc["status"] == "nothing-to-do"

    move = apply(bare, _guest_file(f"network: {N.net}"), "--plan", "--json")
    assert [(c["name"], c["what"]) for c in move.doc["changes"]] == [
        (f"{N.vm} 52:54:00:88:40:02", [f"move bridge {N.br} → network {N.net}"])
    ]
    names = bare / "names.yaml"
    names.write_text(_guest_file(f"network: {N.net}", f"bridge: {N.br}"))
    before = export(names)
    # the move works, then the third NIC's bridge does not exist: libvirt refuses the plug
    bad = apply(bare, _guest_file(f"network: {N.net}", f"bridge: {SPEC.name('apnobr')}"), "--json")
    assert (bad.rc, bad.doc["status"]) == (1, "rolled-back"), bad.out + bad.err
    assert [c["name"] for c in bad.doc["rollback"]] == [f"{N.vm} 52:54:00:88:40:02"]
    assert export(names) == before
    vifs = vifscope("status", "-d", N.vm, "--json").doc["vifs"]
    assert [(v["mac"], v["bridge"], v["status"]) for v in vifs][1] == ("52:54:00:88:40:02", N.br, "bound")

    # port isolation and an nwfilter on the first NIC: a live update that keeps its network
    iso = apply(
        bare, _guest_file(f"bridge: {N.br}").replace("40:01'}", "40:01', isolated: true, nwfilter: clean-traffic}")
    )
    assert iso.rc == 0, iso.out + iso.err
    live = sh("virsh", "dumpxml", N.vm)
    assert "<port isolated='yes'/>" in live and "<filterref filter='clean-traffic'/>" in live
    assert "isolated: true" in vifscope("export", "--names-from", str(bare / "host.yaml")).out
