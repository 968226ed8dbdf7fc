"""``vifscope watch`` and ``watch --heal`` on real libvirtd, real TCG guests, real bridges.

Every watch runs as a child process restricted (``-d``) to this lab's domains, so it never
sees or heals another lab on the same host. Each test restores what it broke.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ping, sh, vif_of, vifscope, wait_for
from tests.e2e.watch_helpers import UnixProxy, audit_lines, heal_of, transition, watching
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e

Target = Callable[..., str]
VIRSH = ("virsh", "-c", "qemu:///system")


def status_of(lab: LabSpec, short: str, index: int = 0) -> str:
    return str(vif_of(vifscope("status", "--json").doc, lab.name(short), index)["status"])


def host_ping(addr: str) -> bool:
    """From the host itself: only for addresses on the lab's own isolated network."""
    return subprocess.run(["ping", "-c", "1", "-W", "1", addr], capture_output=True, check=False).returncode == 0


def plug(tap: str, bridge: str) -> None:
    sh("ip", "link", "set", tap, "master", bridge, "up")


@pytest.fixture
def audit(tmp_path: Path) -> Path:
    return tmp_path / "actions.jsonl"


@pytest.fixture
def bridges_intact(lab: LabSpec, target: Target) -> Iterator[None]:
    """After the test: the lab's bridge and network exist and every tap is plugged back."""
    yield
    if not Path(f"/sys/class/net/{lab.bridge}").exists():
        sh("ip", "link", "add", lab.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
    sh("ip", "link", "set", lab.bridge, "up")
    sh("ip", "link", "set", lab.uplink, "master", lab.bridge)
    sh(*VIRSH, "net-start", lab.network, check=False)
    for short, index, bridge in (("web1", 0, lab.bridge), ("multi", 0, lab.bridge), ("broken", 0, lab.bridge)):
        plug(target(short, index), bridge)
    for short, index in (("db1", 0), ("multi", 1)):
        plug(target(short, index), lab.network_bridge)


def test_detach_prints_transition_from_netlink(lab: LabSpec, target: Target) -> None:
    """The kernel's event, not the 60-s resync (the safety net), reports the detach: the limit
    is generous but far under the resync. How fast (tens of ms) is a figure in BENCHMARKS.md,
    "detach → transition printed", by bench/heal_latency.py."""
    tap = target("web1")
    with watching(lab) as w:
        sh("ip", "link", "set", tap, "nomaster")
        try:
            _at, ev = w.wait(transition(lab.name("web1"), "detached"), 10)
        finally:
            plug(tap, lab.bridge)
        assert (ev["from"], ev["master_from"], ev["master_to"], ev["target"]) == ("bound", lab.bridge, None, tap)
        assert ev["cause"] == "netlink" and ev["vif"]["status"] == "detached"
        w.wait(transition(lab.name("web1"), "bound"), 5)
        assert not w.events("heal"), "watch without --heal must never heal"


def test_text_line_names_domain_mac_tap_and_master(lab: LabSpec, target: Target) -> None:
    tap, mac = target("web1"), lab.guest("web1").nics[0].mac
    with watching(lab, as_json=False) as w:
        sh("ip", "link", "set", tap, "nomaster")
        try:
            want = f"{lab.name('web1')} {mac} {tap} bound → detached (master {lab.bridge} → none)"
            w.wait(lambda e: want in e["line"], 5)
        finally:
            plug(tap, lab.bridge)
        w.wait(lambda e: f"{tap} detached → bound" in e["line"], 5)
    assert w.proc.returncode == 0
    assert w.seen[-1][1]["line"].endswith("stopped (SIGTERM)")


def test_heal_reattaches_and_guest_answers_ping(lab: LabSpec, target: Target, audit: Path) -> None:
    tap, addr = target("web1"), f"{lab.subnet(1)}.11"
    assert wait_for(lambda: ping(lab.netns, addr), 20), "web1 must answer before the test breaks it"
    with watching(lab, "--heal", "--audit-log", str(audit)) as w:
        sh("ip", "link", "set", tap, "nomaster")
        try:
            _, heal = w.wait(heal_of(lab.name("web1"), tap), 5)
            w.wait(transition(lab.name("web1"), "bound"), 5)
        finally:
            plug(tap, lab.bridge)
    assert heal["result"] == "ok", heal
    assert heal["commands"] == [f"ip link set dev {tap} master {lab.bridge}"]
    assert wait_for(lambda: ping(lab.netns, addr), 10), "healed guest must answer ping from outside"
    mine = [r for r in audit_lines(audit) if r["target"] == tap]
    assert [(r["actor"], r["phase"], r["result"]) for r in mine][-2:] == [
        ("heal", "apply", "ok"),
        ("heal", "verify", "verified"),
    ]
    assert mine[-1]["domain"] == lab.name("web1") and mine[-1]["reason"] == "detached"


def test_bridge_recreated_every_guest_reattached(
    lab: LabSpec, target: Target, audit: Path, bridges_intact: None
) -> None:
    on_bridge = {"web1": target("web1"), "multi": target("multi", 0), "broken": target("broken")}
    for tap in on_bridge.values():  # the lab's deliberately detached guest too: only the recreation counts
        plug(tap, lab.bridge)
    with watching(lab, "--heal", "--audit-log", str(audit)) as w:
        sh("ip", "link", "del", lab.bridge)
        w.wait(transition(lab.name("web1"), "detached"), 5)
        sh("ip", "link", "add", lab.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        sh("ip", "link", "set", lab.bridge, "up")
        sh("ip", "link", "set", lab.uplink, "master", lab.bridge)
        heals = [w.wait(heal_of(lab.name(short), tap), 10)[1] for short, tap in on_bridge.items()]
        for short in on_bridge:
            w.wait(lambda e, s=short: transition(lab.name(s), "bound")(e) and e["cause"] in ("heal", "heal-check"), 10)
    assert {h["result"] for h in heals} == {"ok"}, heals
    for short in on_bridge:
        assert status_of(lab, short) == "bound"
    for addr in (f"{lab.subnet(1)}.11", f"{lab.subnet(1)}.12", f"{lab.subnet(1)}.13"):
        assert wait_for(lambda a=addr: ping(lab.netns, a), 15), f"{addr} unreachable after the heal"


def test_network_restarted_every_guest_reattached(
    lab: LabSpec, target: Target, audit: Path, bridges_intact: None
) -> None:
    on_net = {("db1", 0): target("db1"), ("multi", 1): target("multi", 1)}
    with watching(lab, "--heal", "--audit-log", str(audit)) as w:
        sh(*VIRSH, "net-destroy", lab.network)
        w.wait(lambda e: transition(lab.name("db1"), "detached")(e) and "network_inactive" in e["problems"], 10)
        sh(*VIRSH, "net-start", lab.network)
        for (short, index), tap in on_net.items():
            _, heal = w.wait(heal_of(lab.name(short), tap), 10)
            assert heal["result"] == "ok" and heal["commands"] == [f"ip link set dev {tap} master {lab.network_bridge}"]
            w.wait(transition(lab.name(short), "bound", index), 10)
    assert status_of(lab, "db1") == "bound" and status_of(lab, "multi", 1) == "bound"
    # multi's second NIC has a static address on the isolated network; the host holds .1 there.
    assert wait_for(lambda: host_ping(f"{lab.subnet(2)}.12"), 15)


def test_flap_loop_hits_the_rate_limit(lab: LabSpec, target: Target, audit: Path, tmp_path: Path) -> None:
    """Another tool keeps detaching the tap: heal stops after max_heals and says so."""
    tap = target("web1")
    config = tmp_path / "watch.toml"
    config.write_text("[heal]\ngrace = 0.05\nmax_heals = 3\nwindow = 120\nbackoff_initial = 0.3\n")
    stop = threading.Event()

    def flapper() -> None:
        while not stop.wait(0.2):
            sh("ip", "link", "set", tap, "nomaster", check=False)

    loop = threading.Thread(target=flapper, daemon=True)
    with watching(lab, "--heal", "--audit-log", str(audit), "--config", str(config)) as w:
        loop.start()
        try:
            _, limited = w.wait(lambda e: e["event"] == "heal-limited" and e["target"] == tap, 20)
            w.drain(3.0)  # the loop goes on: no further heal may happen
        finally:
            stop.set()
            loop.join()
            plug(tap, lab.bridge)
    heals = [e for e in w.events("heal") if e["target"] == tap]
    assert len(heals) == 3, heals
    assert "another tool" in limited["reason"] and limited["for_s"] > 60
    assert len([r for r in audit_lines(audit) if r["target"] == tap and r["phase"] == "apply"]) == 3


def test_never_heals_a_link_set_down_in_libvirt(lab: LabSpec, target: Target, audit: Path) -> None:
    dom, tap, mac = lab.name("web1"), target("web1"), lab.guest("web1").nics[0].mac or ""
    sh(*VIRSH, "domif-setlink", dom, mac, "down")
    try:
        with watching(lab, "--heal", "--audit-log", str(audit)) as w:
            sh("ip", "link", "set", tap, "nomaster")
            _, skipped = w.wait(lambda e: e["event"] == "heal-skipped" and e["target"] == tap, 10)
            w.drain(1.5)
        assert "link state='down'" in skipped["reason"]
        assert not [e for e in w.events("heal") if e["target"] == tap]
        assert vif_of(vifscope("status", "--json").doc, dom)["observed"]["master"] is None
        assert not [r for r in audit_lines(audit) if r["target"] == tap]
    finally:
        sh(*VIRSH, "domif-setlink", dom, mac, "up")
        plug(tap, lab.bridge)


def test_dry_run_changes_nothing(lab: LabSpec, target: Target, audit: Path) -> None:
    tap = target("web1")
    with watching(lab, "--heal", "--dry-run", "--audit-log", str(audit)) as w:
        sh("ip", "link", "set", tap, "nomaster")
        try:
            _, heal = w.wait(heal_of(lab.name("web1"), tap), 5)
            w.drain(1.0)
            assert status_of(lab, "web1") == "detached"
        finally:
            plug(tap, lab.bridge)
    assert heal["result"] == "dry-run" and heal["commands"] == [f"ip link set dev {tap} master {lab.bridge}"]
    assert audit_lines(audit) == []


def test_ovs_port_readded_with_external_ids(lab: LabSpec, target: Target, audit: Path) -> None:
    tap = target("ovs1")
    before = vif_of(vifscope("status", "--json").doc, lab.name("ovs1"))["observed"]
    with watching(lab, "--heal", "--audit-log", str(audit)) as w:
        sh("ovs-vsctl", "del-port", lab.ovs_bridge, tap)
        _, ev = w.wait(transition(lab.name("ovs1"), "detached"), 5)
        assert ev["cause"] == "ovsdb" and ev["master_from"] == f"ovs:{lab.ovs_bridge}"
        _, heal = w.wait(heal_of(lab.name("ovs1"), tap), 5)
        w.wait(transition(lab.name("ovs1"), "bound"), 5)
    assert heal["result"] == "ok", heal
    after = vif_of(vifscope("status", "--json").doc, lab.name("ovs1"))["observed"]
    assert (after["ovs_bridge"], after["ovs_iface_id"], after["ovs_attached_mac"]) == (
        lab.ovs_bridge,
        before["ovs_iface_id"],
        before["ovs_attached_mac"],
    )


def test_libvirt_events_domain_start_stop_and_hotplug(lab: LabSpec) -> None:
    off, web = lab.name("off"), lab.name("web1")
    with watching(lab) as w:
        sh(*VIRSH, "start", off)
        try:
            _, up = w.wait(transition(off, "bound"), 15)
            assert up["from"] == "inactive" and up["cause"].startswith("libvirt:lifecycle")
        finally:
            sh(*VIRSH, "destroy", off, check=False)
        w.wait(transition(off, "inactive"), 15)
        sh(
            *VIRSH,
            "attach-interface",
            web,
            "bridge",
            lab.spare_bridge,
            "--model",
            "virtio",
            "--mac",
            "52:54:00:fe:00:01",
        )
        try:
            _, new = w.wait(lambda e: e["event"] == "transition" and e["mac"] == "52:54:00:fe:00:01", 10)
            assert (new["from"], new["to"]) == (None, "bound")
            assert new["cause"].startswith("libvirt:device-added")
        finally:
            sh(*VIRSH, "detach-interface", web, "bridge", "--mac", "52:54:00:fe:00:01")
        _, gone = w.wait(
            lambda e: e["event"] == "transition" and e["mac"] == "52:54:00:fe:00:01" and e["to"] is None, 10
        )
        # libvirt deletes the tap (netlink: missing) before it sends device-removed (gone).
        assert gone["from"] in ("bound", "missing") and gone["cause"].startswith("libvirt:device-removed")


def test_sighup_reloads_config_and_bad_config_keeps_the_old(lab: LabSpec, tmp_path: Path) -> None:
    import signal

    config = tmp_path / "watch.toml"
    config.write_text("[heal]\nmax_heals = 4\n")
    with watching(lab, "--config", str(config)) as w:
        assert w.events("start")[0]["config"]["heal"]["max_heals"] == 4
        config.write_text("[heal]\nmax_heals = 2\n[watch]\nresync_interval = 5\n")
        w.proc.send_signal(signal.SIGHUP)
        _, ok = w.wait(lambda e: e["event"] == "reload", 5)
        assert ok["ok"] and ok["config"]["heal"]["max_heals"] == 2 and ok["config"]["resync_interval"] == 5
        config.write_text("[heal\n")
        w.proc.send_signal(signal.SIGHUP)
        _, bad = w.wait(lambda e: e["event"] == "reload" and not e["ok"], 5)
        assert "not valid TOML" in bad["error"]
    assert w.proc.returncode == 0
    assert w.events("stop") == [{"event": "stop", "at": w.events("stop")[0]["at"], "signal": "SIGTERM"}]


def test_usage_and_start_errors_are_one_line(lab: LabSpec, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[heal]\nverdicts = ['sideways']\n")
    res = vifscope("watch", "--config", str(bad))
    assert res.rc == 2 and "error:" in res.err and "hint:" in res.err and "Traceback" not in res.err
    res = vifscope("-c", "test:///nonexistent/vs-w-nothing.xml", "watch")
    assert res.rc == 3 and "error: cannot connect to libvirt" in res.err and "hint:" in res.err
    assert vifscope("watch", "--no-such-flag").rc == 2


def test_libvirt_connection_lost_and_back(lab: LabSpec, target: Target, audit: Path, tmp_path: Path) -> None:
    """libvirtd 'goes away' (a proxy in front of its socket drops every connection): watch
    reports it, keeps reporting kernel changes, pauses heals, reconnects with back-off, heals.

    (The real daemon restart is test_watch_survives_libvirtd_restart: it disturbs other runs.)
    """
    proxy = UnixProxy(tmp_path / "libvirt-sock")
    proxy.open()
    tap = target("web1")
    try:
        with watching(lab, "--heal", "--audit-log", str(audit), uri=proxy.uri) as w:
            proxy.close()
            _, down = w.wait(lambda e: e["event"] == "source" and e["source"] == "libvirt", 10)
            assert down["state"] == "down" and down["hint"]
            sh("ip", "link", "set", tap, "nomaster")
            w.wait(transition(lab.name("web1"), "detached"), 5)  # netlink goes on without libvirt
            w.drain(1.5)
            assert not [e for e in w.events("heal") if e["target"] == tap], "no heal while libvirt is down"
            proxy.open()
            w.wait(lambda e: e["event"] == "source" and e["source"] == "libvirt" and e["state"] == "up", 40)
            _, heal = w.wait(heal_of(lab.name("web1"), tap), 10)
            w.wait(transition(lab.name("web1"), "bound"), 10)
        assert heal["result"] == "ok"
        assert w.proc.returncode == 0
    finally:
        proxy.close()
        plug(tap, lab.bridge)
