"""doctor --fix on real libvirtd + real TCG guests: break a binding for real, fix it, the guest answers.

Each test restores what it broke in ``finally`` (also when the fix itself did the restoring),
so the order does not matter and the host is left as the lab made it. The audit log goes to a
per-test temporary file, never to /var/log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Result, ping, sh, vif_of, vifscope, wait_for
from vifscope.actions import read_records
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e

Target = Callable[..., str]
VIRSH = ("virsh", "-c", "qemu:///system")

# The doctor command calls run_fix(args, snapshot, bindings, findings); this runs exactly that,
# in its own process (real exit code), with the args the doctor command passes.
# Host findings (``checks``) are built as the doctor checks report them: check id, host subject.
WRAPPER = """
import argparse, json, sys
from vifscope.cli.fix import run_fix
from vifscope.bind.join import bind
from vifscope.model import Finding, Severity
from vifscope.sources.snapshot import take_snapshot
args = argparse.Namespace(**json.loads(sys.argv[1]))
snap = take_snapshot(args.connect or "qemu:///system")
found = [Finding(c, Severity.ERROR, "host", "host check", subject="host") for c in args.checks]
sys.exit(run_fix(args, snap, bind(snap), found))
"""


def fix(audit: Path, *domains: str, netns: str | None = None, **opts: Any) -> Result:
    """Always for named domains: other labs on this libvirtd are broken on purpose and not ours to fix."""
    assert domains or opts.get("domain"), "name the domains to fix"
    args = {
        "connect": None,
        "json": True,
        "yes": True,
        "dry_run": False,
        "fix_host": False,
        "fix_link_down": False,
        "audit_log": str(audit),
        "domain": list(domains) or None,
        "settle": 0.2,
        "checks": [],
        **opts,
    }
    inside = ["ip", "netns", "exec", netns] if netns else []
    proc = subprocess.run(
        [*inside, sys.executable, "-c", WRAPPER, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def status(lab: LabSpec) -> dict[str, Any]:
    res = vifscope("status", "--json")
    assert res.rc in (0, 1), res.err
    return res.doc


def master_of(link: str) -> str | None:
    path = Path(f"/sys/class/net/{link}/master")
    return path.resolve().name if path.exists() else None


@pytest.fixture
def audit(tmp_path: Path) -> Path:
    return tmp_path / "log" / "actions.jsonl"


def test_doctor_fix_yes_reattaches_a_detached_tap_and_the_guest_answers(
    lab: LabSpec, target: Target, audit: Path
) -> None:
    """The user's path: vifscope doctor DOMAIN --fix --yes."""
    tap, addr = target("web1"), f"{lab.subnet(1)}.11"
    assert wait_for(lambda: ping(lab.netns, addr), 20), "web1 must answer before the test breaks it"
    sh("ip", "link", "set", tap, "nomaster")
    try:
        assert not ping(lab.netns, addr)
        res = vifscope("doctor", lab.name("web1"), "--fix", "--yes", "--json", "--audit-log", str(audit))
        doc = res.doc
        assert doc["result"] == "verified", res.err
        assert [(a["kind"], a["target"]) for a in doc["plan"]["actions"]] == [("attach", tap)]
        assert doc["plan"]["actions"][0]["commands"] == [f"ip link set dev {tap} master {lab.bridge}"]
        assert [(a["domain"], a["status"]) for a in doc["after"]] == [(lab.name("web1"), "bound")]
        # Whatever is left is host-wide (sysctls without --fix-host): then, and only then, exit 1.
        assert all(s["domain"] is None for s in doc["plan"]["skipped"])
        assert res.rc == (1 if doc["plan"]["skipped"] else 0), res.err
        assert master_of(tap) == lab.bridge
        assert wait_for(lambda: ping(lab.netns, addr), 10), "the guest must answer again after --fix"
        lines = read_records(audit)
        assert [(r.phase, r.result, r.action, r.target, r.actor) for r in lines] == [
            ("apply", "ok", "attach", tap, "doctor-fix"),
            ("verify", "verified", "attach", tap, "doctor-fix"),
        ]
        assert lines[0].commands == (f"ip link set dev {tap} master {lab.bridge}",)
        assert lines[0].domain == lab.name("web1") and lines[0].reason == "detached"
        assert len({r.run for r in lines}) == 1
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)


def test_doctor_dry_run_prints_the_plan_and_changes_nothing(lab: LabSpec, target: Target, audit: Path) -> None:
    tap = target("web1")
    sh("ip", "link", "set", tap, "nomaster")
    try:
        res = vifscope("doctor", lab.name("web1"), "--fix", "--dry-run", "--audit-log", str(audit))
        assert res.rc == 1, res.err
        assert f"ip link set dev {tap} master {lab.bridge}" in res.out
        assert f"ip link set dev {tap} nomaster" in res.out  # the undo is shown too
        assert master_of(tap) is None
        assert not audit.exists()
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)


class Fighter:
    """Another tool fighting vifscope: detaches the tap whenever it finds it on a bridge (a real
    flap loop, as a misconfigured orchestrator would make). Verification must see it and roll back."""

    def __init__(self, tap: str) -> None:
        self.tap = tap
        self.stop = threading.Event()
        self.detaches = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(0.02):
            if master_of(self.tap):
                subprocess.run(["ip", "link", "set", self.tap, "nomaster"], check=False, capture_output=True)
                self.detaches += 1

    def __enter__(self) -> Fighter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def test_failed_verification_rolls_back_what_is_still_ours(lab: LabSpec, target: Target, audit: Path) -> None:
    """Two actions (attach + tap up); the attach is reverted by another tool before verification:
    both are rolled back, so the tap ends detached AND down, exactly as before --fix."""
    tap = target("web1")
    sh("ip", "link", "set", tap, "nomaster")
    sh("ip", "link", "set", tap, "down")
    try:
        with Fighter(tap) as fighter:
            res = fix(audit, lab.name("web1"), settle=0.8)
        assert res.rc == 1, res.err
        doc = res.doc
        assert doc["result"] == "rolled-back"
        assert fighter.detaches >= 1
        kinds = {r["kind"]: r for r in doc["results"]}
        assert set(kinds) == {"attach", "tap-up"}
        assert kinds["attach"]["verified"] is False
        assert any("master is none" in b for b in kinds["attach"]["broken"])
        assert kinds["tap-up"]["verified"] is True  # it worked, and is still undone
        assert kinds["tap-up"]["rolled_back"] is True
        # The other tool took the attach over: left as that tool set it, not fought.
        assert kinds["attach"]["rolled_back"] is False
        # The host is as before: detached and admin down.
        assert master_of(tap) is None
        assert "UP" not in json.loads(sh("ip", "-j", "link", "show", tap))[0]["flags"]
        web = vif_of(status(lab), lab.name("web1"))
        assert {"detached", "tap_down"} <= set(web["problems"])
        phases = [(r.phase, r.action, r.result) for r in read_records(audit)]
        assert phases == [
            ("apply", "attach", "ok"),
            ("apply", "tap-up", "ok"),
            ("verify", "attach", "not-verified"),
            ("verify", "tap-up", "verified"),
            ("rollback", "tap-up", "rolled-back"),
            ("rollback", "attach", "rollback-skipped"),
        ]
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)
        sh("ip", "link", "set", tap, "up")


def test_no_terminal_and_no_yes_is_refused(lab: LabSpec, target: Target, audit: Path) -> None:
    tap = target("web1")
    sh("ip", "link", "set", tap, "nomaster")
    try:
        res = fix(audit, lab.name("web1"), yes=False, json=False)
        assert res.rc == 2
        assert "pass --yes" in res.err and "Traceback" not in res.err
        assert master_of(tap) is None
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)


@pytest.fixture
def link_down_web1(lab: LabSpec, target: Target) -> Iterator[str]:
    dom, mac, tap = lab.name("web1"), lab.guest("web1").nics[0].mac or "", target("web1")
    sh(*VIRSH, "domif-setlink", dom, mac, "down")
    sh("ip", "link", "set", tap, "nomaster")
    try:
        yield tap
    finally:
        sh(*VIRSH, "domif-setlink", dom, mac, "up")
        sh("ip", "link", "set", tap, "master", lab.bridge)


def test_link_state_down_is_left_alone_unless_asked(lab: LabSpec, link_down_web1: str, audit: Path) -> None:
    tap, dom = link_down_web1, lab.name("web1")
    res = fix(audit, dom)
    assert res.rc == 1
    assert res.doc["result"] == "nothing-to-do"
    assert [s["reason"] for s in res.doc["plan"]["skipped"]] == ["link_state_down"]
    assert master_of(tap) is None

    res = fix(audit, dom, fix_link_down=True)
    assert res.rc == 0, res.err
    assert [a["kind"] for a in res.doc["plan"]["actions"]] == ["attach", "link-state-up"]
    web = vif_of(status(lab), dom)
    assert (web["status"], web["link_state"]) == ("bound", "up")
    assert wait_for(lambda: ping(lab.netns, f"{lab.subnet(1)}.11"), 10)


def test_inactive_network_is_started_and_its_taps_replugged(lab: LabSpec, target: Target, audit: Path) -> None:
    """net-destroy takes the bridge away; --fix starts the network and re-plugs both guests' taps."""
    taps = {target("db1"): lab.name("db1"), target("multi", 1): lab.name("multi")}
    sh(*VIRSH, "net-destroy", lab.network)
    try:
        res = fix(audit, lab.name("db1"), lab.name("multi"))
        assert res.rc == 0, res.err
        plan = [(a["kind"], a["target"]) for a in res.doc["plan"]["actions"]]
        assert plan[0] == ("network-start", lab.network)
        assert sorted(plan[1:]) == sorted(("attach", t) for t in taps)
        assert all(master_of(t) == lab.network_bridge for t in taps)
        doc = status(lab)
        assert vif_of(doc, lab.name("db1"))["status"] == "bound"
        assert vif_of(doc, lab.name("multi"), 1)["status"] == "bound"
        # multi's static address on the isolated network answers through the restarted bridge.
        assert wait_for(lambda: _ping_via(lab.network_bridge, f"{lab.subnet(2)}.12"), 10)
    finally:
        sh(*VIRSH, "net-start", lab.network, check=False)
        for tap in taps:
            sh("ip", "link", "set", tap, "master", lab.network_bridge, "up")


def _ping_via(dev: str, addr: str) -> bool:
    """From the host over the lab's own isolated bridge (it holds the network's .1 address)."""
    proc = subprocess.run(["ping", "-c", "1", "-W", "1", "-I", dev, addr], capture_output=True, check=False)
    return proc.returncode == 0


def test_ovs_port_is_readded_with_libvirts_external_ids(lab: LabSpec, target: Target, audit: Path) -> None:
    tap = target("ovs1")
    before = vif_of(status(lab), lab.name("ovs1"))
    assert before["status"] == "bound", before
    uuid = before["domain_uuid"]
    iface_id = before["observed"]["ovs_iface_id"]
    sh("ovs-vsctl", "del-port", lab.ovs_bridge, tap)
    try:
        res = fix(audit, lab.name("ovs1"))
        assert res.rc == 0, res.err
        assert [a["kind"] for a in res.doc["plan"]["actions"]] == ["attach"]
        ids = sh("ovs-vsctl", "get", "Interface", tap, "external_ids")
        for key, value in (("iface-id", iface_id), ("attached-mac", before["mac"]), ("vm-id", uuid)):
            assert f'{key}="{value}"' in ids or f"{key}={value}" in ids, ids
        assert "iface-status=active" in ids
        assert sh("ovs-vsctl", "port-to-br", tap).strip() == lab.ovs_bridge
        assert vif_of(status(lab), lab.name("ovs1"))["status"] == "bound"
    finally:
        sh("ovs-vsctl", "--may-exist", "add-port", lab.ovs_bridge, tap)


def test_only_faulty_vifs_of_the_chosen_domains_are_planned(lab: LabSpec, target: Target, audit: Path) -> None:
    """All the lab's domains chosen: the plan holds exactly the broken guest's re-attach.

    (Never run --fix without --domain here: other labs on this libvirtd are broken on purpose.)
    """
    tap = target("broken")
    try:
        res = fix(audit, *(g.name for g in lab.guests()))
        assert res.rc == 0, res.err
        assert [(a["kind"], a["target"]) for a in res.doc["plan"]["actions"]] == [("attach", tap)]
        assert master_of(tap) == lab.bridge
    finally:
        sh("ip", "link", "set", tap, "nomaster")  # the lab's deliberate fault, as lab up leaves it


@pytest.fixture
def sysctl_netns() -> Iterator[str]:
    """A private namespace: net.* sysctls there are its own, so --fix-host changes nothing of the host's."""
    name = "vs-f-sysctl"
    sh("ip", "netns", "add", name)
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name)


def ns_sysctl(netns: str, key: str) -> str:
    return sh("ip", "netns", "exec", netns, "cat", f"/proc/sys/{key.replace('.', '/')}").strip()


def test_fix_host_writes_sysctl_files_and_sets_them(sysctl_netns: str, tmp_path: Path, audit: Path) -> None:
    host_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    sysctl_dir = tmp_path / "sysctl.d"
    checks = ["host.ip_forward_off", "sysctl.somaxconn_low"]
    opts = {"checks": checks, "sysctl_dir": str(sysctl_dir), "domain": ["vs-f-none"]}
    res = fix(audit, netns=sysctl_netns, **opts)
    assert res.rc == 1, res.err
    assert {s["reason"] for s in res.doc["plan"]["skipped"]} == set(checks)
    assert ns_sysctl(sysctl_netns, "net.ipv4.ip_forward") == "0"

    res = fix(audit, netns=sysctl_netns, fix_host=True, **opts)
    assert res.rc == 0, res.err
    assert res.doc["result"] == "verified"
    assert ns_sysctl(sysctl_netns, "net.ipv4.ip_forward") == "1"
    assert (sysctl_dir / "90-vifscope-net.ipv4.ip_forward.conf").read_text().endswith("net.ipv4.ip_forward = 1\n")
    assert (sysctl_dir / "90-vifscope-net.core.somaxconn.conf").exists()
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forward  # the host's own is untouched


def test_fix_host_rolls_back_sysctls_and_files_when_another_tool_reverts(
    sysctl_netns: str, tmp_path: Path, audit: Path
) -> None:
    sysctl_dir = tmp_path / "sysctl.d"
    sh("ip", "netns", "exec", sysctl_netns, "sysctl", "-qw", "net.core.somaxconn=128")
    loop = "while :; do sysctl -qw net.ipv4.ip_forward=0; sleep 0.02; done"
    fighter = subprocess.Popen(["ip", "netns", "exec", sysctl_netns, "sh", "-c", loop])
    try:
        checks = ["host.ip_forward_off", "sysctl.somaxconn_low"]
        opts = {"checks": checks, "sysctl_dir": str(sysctl_dir), "domain": ["vs-f-none"], "settle": 0.5}
        res = fix(audit, netns=sysctl_netns, fix_host=True, **opts)
        assert res.rc == 1, res.err
        assert res.doc["result"] == "rolled-back"
        by_target = {r["target"]: r for r in res.doc["results"]}
        assert by_target["net.ipv4.ip_forward"]["verified"] is False
        assert by_target["net.core.somaxconn"]["verified"] is True
        assert all(r["rolled_back"] for r in res.doc["results"])
    finally:
        fighter.kill()
        fighter.wait()
    assert ns_sysctl(sysctl_netns, "net.core.somaxconn") == "128"  # the value before apply, not 4096
    assert not sysctl_dir.exists() or list(sysctl_dir.iterdir()) == []
    assert [(r.phase, r.result) for r in read_records(audit)][-2:] == [
        ("rollback", "rolled-back"),
        ("rollback", "rolled-back"),
    ]
