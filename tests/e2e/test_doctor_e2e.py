"""vifscope doctor on real libvirtd + real TCG guests: each check's fault is made for real (on a
lab guest, a bridge, a libvirt network, a network namespace for per-namespace sysctls, a
private mount namespace for device nodes / the OVSDB socket) and its finding asserted with
the evidence. Every test restores what it broke in ``finally``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import ping, sh, wait_for
from tests.e2e.doctor_lab import (
    VIRSH,
    defined,
    doctor,
    hotplug,
    in_mount_ns,
    in_netns,
    lease_ip,
    link_attr,
    netns,
    nic_xml,
    run_fix,
)
from vifscope.lab.lab import break_guest
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e

Target = Callable[..., str]
# True of this host whatever the lab does (see LAB-FACTS.md): no vhost-net in the kernel, a
# paravirtual KVM without vmx/svm. Warnings, never errors.
HOST_TRUTHS = {"host.vhost_net_missing", "host.kvm_unusable"}


def _running_virtio_vifs() -> int:
    """virtio vifs on a tap or macvtap of every running domain, as virsh lists them."""
    names = sh(*VIRSH, "list", "--name").split()
    rows = [line.split() for d in names for line in sh(*VIRSH, "domiflist", d).splitlines()]
    taps = ("bridge", "network", "direct", "ethernet")
    return sum(1 for r in rows if len(r) == 5 and r[1] in taps and r[3] == "virtio")


def _lab_domains(lab: LabSpec) -> list[str]:
    return [g.name for g in lab.guests()]


def test_healthy_lab_has_no_error_beyond_the_deliberate_one(lab: LabSpec) -> None:
    break_guest(lab.guest("broken"))  # the lab's one deliberate fault (a libvirtd restart re-plugs it)
    args = [a for d in _lab_domains(lab) if d != lab.name("broken") for a in ("-d", d)]
    res = doctor(*args)
    errors = [f for f in res.doc["findings"] if f["severity"] == "error"]
    assert errors == [], errors
    assert res.rc == 0, res.err
    assert res.checks() >= HOST_TRUTHS
    # Also true here: every running virtio vif runs without vhost (the kernel has none). That is
    # one root cause, reported once with the vifs it slows, not once per vif.
    web = lab.name("web1")
    vhost = res.one("host.vhost_net_missing")["evidence"]
    assert vhost["exists"] is False
    count = _running_virtio_vifs()
    assert vhost["virtio_vifs"] == count
    if count <= 8:  # the evidence names up to 8 vifs (other domains on this host may come first)
        assert f"{web}#0" in vhost["affected"].split(", ")
    else:
        assert vhost["affected"].endswith(f" (+{count - 8} more)")
    assert "perf.no_vhost" not in res.checks()
    assert res.doc["source_errors"] == []
    rows = {(r["domain"], r["index"]): r for r in res.doc["isolation"]}
    assert rows[(web, 0)]["layers"]["physical"] == {
        "level": "shared",
        "detail": f"bridge {lab.bridge} uplinks {lab.uplink}",
    }
    full = doctor()
    broken = full.one("vif.detached", lab.name("broken"))
    assert broken["fix"] == f"ip link set dev {broken['target']} master {lab.bridge}"
    assert full.rc == 1


def test_detached_tap_and_its_fix(lab: LabSpec, target: Target) -> None:
    tap, web = target("web1"), lab.name("web1")
    sh("ip", "link", "set", tap, "nomaster")
    try:
        found = doctor("-d", web).one("vif.detached", web)
        assert found["evidence"]["expected"] == lab.bridge and found["evidence"]["actual"] is None
        run_fix(found)
        assert "vif.detached" not in doctor("-d", web).checks(web)
        assert wait_for(lambda: ping(lab.netns, f"{lab.subnet(1)}.11"), 15)
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)


def test_misbound_tap_and_its_fix(lab: LabSpec, target: Target) -> None:
    tap, web = target("web1"), lab.name("web1")
    sh("ip", "link", "set", tap, "master", lab.spare_bridge)
    try:
        found = doctor("-d", web).one("vif.misbound", web)
        assert found["evidence"]["actual"] == lab.spare_bridge
        run_fix(found)
        assert link_attr(tap, "master") == lab.bridge
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)


def test_tap_down_and_link_state_down(lab: LabSpec, target: Target) -> None:
    tap, web = target("web1"), lab.name("web1")
    mac = lab.guest("web1").nics[0].mac or ""
    sh("ip", "link", "set", tap, "down")
    sh(*VIRSH, "domif-setlink", web, mac, "down")
    try:
        res = doctor("-d", web)
        assert res.one("vif.tap_down", web)["evidence"]["admin_up"] is False
        link_down = res.one("vif.link_state_down", web)
        assert link_down["fix"] == f"virsh -c {res.doc['uri']} domif-setlink -- {web} {mac} up"
        run_fix(res.one("vif.tap_down", web))
        run_fix(link_down)
        assert not {"vif.tap_down", "vif.link_state_down"} & doctor("-d", web).checks(web)
    finally:
        sh("ip", "link", "set", tap, "up")
        sh(*VIRSH, "domif-setlink", web, mac, "up", check=False)


def test_missing_tap(lab: LabSpec) -> None:
    web = lab.name("web1")
    nic = nic_xml("52:54:00:81:0e:01", lab.spare_bridge, target="vs-d-gone0")
    with hotplug(web, nic):
        sh("ip", "link", "del", "vs-d-gone0")  # QEMU's tap deleted under a running domain
        found = [f for f in doctor("-d", web).find("vif.missing", web) if f["target"] == "vs-d-gone0"]
        assert len(found) == 1 and found[0]["severity"] == "error"


def test_bridge_without_uplink_then_deleted(lab: LabSpec) -> None:
    web, br = lab.name("web1"), "vs-d-tb0"
    sh("ip", "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0")
    nic = nic_xml("52:54:00:81:0e:02", br, target="vs-d-tbt0")
    try:
        sh("ip", "link", "set", br, "up")
        with hotplug(web, nic):
            found = doctor("-d", web).one("bridge.no_uplink", subject=br)
            assert found["severity"] == "warning" and found["evidence"]["uplinks"] == ""
            sh("ip", "link", "del", br)
            res = doctor("-d", web)
            assert res.one("bridge.missing", web, br)["evidence"]["bridge"] == br
            assert any(f["target"] == "vs-d-tbt0" for f in res.find("vif.detached", web))
    finally:
        sh("ip", "link", "del", br, check=False)


def test_bridge_down_and_uplink_down(lab: LabSpec) -> None:
    sh("ip", "link", "set", lab.uplink, "down")
    sh("ip", "link", "set", lab.bridge, "down")
    try:
        res = doctor("-d", lab.name("web1"))
        assert res.one("bridge.down", lab.name("web1"), lab.bridge)["fix"] == f"ip link set dev {lab.bridge} up"
        up = res.one("bridge.uplink_down", subject=lab.bridge)
        assert (up["severity"], up["evidence"][lab.uplink]) == ("error", "admin down")
    finally:
        sh("ip", "link", "set", lab.bridge, "up")
        sh("ip", "link", "set", lab.uplink, "up")
    assert wait_for(lambda: ping(lab.netns, f"{lab.subnet(1)}.11"), 15)


def test_stp_forward_delay(lab: LabSpec) -> None:
    sh("ip", "link", "set", lab.bridge, "type", "bridge", "stp_state", "1", "forward_delay", "400")
    try:
        found = doctor("-d", lab.name("web1")).one("bridge.stp_forward_delay", subject=lab.bridge)
        assert (found["evidence"]["stp_state"], found["evidence"]["forward_delay_s"]) == (1, 4.0)
        run_fix(found)
        info = link_attr(lab.bridge, "linkinfo")["info_data"]
        assert (info["stp_state"], info["forward_delay"]) == (0, 0)
    finally:
        sh("ip", "link", "set", lab.bridge, "type", "bridge", "stp_state", "0")
        sh("ip", "link", "set", lab.bridge, "type", "bridge", "forward_delay", "0")
    assert wait_for(lambda: ping(lab.netns, f"{lab.subnet(1)}.11"), 15)


def test_second_uplink_without_stp(lab: LabSpec) -> None:
    sh("ip", "link", "add", "vs-d-l1a", "type", "veth", "peer", "name", "vs-d-l1b")
    try:
        sh("ip", "link", "set", "vs-d-l1a", "master", lab.bridge, "up")
        found = doctor("-d", lab.name("web1")).one("sec.stp_off_multi_uplink", subject=lab.bridge)
        assert set(found["evidence"]["uplinks"].split(", ")) == {lab.uplink, "vs-d-l1a"}
    finally:
        sh("ip", "link", "del", "vs-d-l1a", check=False)


def test_mtu_mismatch(lab: LabSpec, target: Target) -> None:
    tap, web = target("web1"), lab.name("web1")
    sh("ip", "link", "set", tap, "mtu", "9000")
    try:
        found = doctor("-d", web).one("vif.mtu_mismatch", web)
        assert (found["evidence"]["tap_mtu"], found["evidence"]["bridge_mtu"]) == (9000, 1500)
        run_fix(found)
        assert link_attr(tap, "mtu") == 1500
    finally:
        sh("ip", "link", "set", tap, "mtu", "1500")


def test_config_faults_of_a_defined_domain(lab: LabSpec) -> None:
    """A real (shut-off) definition: duplicate, host-clashing and all-zero MACs, e1000, queues."""
    web_mac = lab.guest("web1").nics[0].mac
    # The macvtap lower: a veth on no bridge keeps its MAC (an empty bridge drops to 00:00:...).
    host_mac = link_attr(lab.macvtap_lower, "address")
    xml = f"""<domain type='qemu'><name>vs-d-cfg</name><memory unit='MiB'>64</memory><vcpu>2</vcpu>
      <os><type arch='x86_64'>hvm</type></os><devices>
      {nic_xml(str(web_mac), lab.bridge).replace("virtio", "e1000")}
      {nic_xml(str(host_mac), lab.bridge)}
      <interface type='bridge'><mac address='00:00:00:00:00:00'/><source bridge='{lab.bridge}'/><model type='virtio'/>
        <driver name='vhost' queues='8'/></interface>
      <interface type='direct' trustGuestRxFilters='yes'><mac address='52:54:00:81:0e:03'/>
        <source dev='{lab.macvtap_lower}' mode='bridge'/><model type='virtio'/></interface>
      </devices></domain>"""
    with defined("dom", "vs-d-cfg", xml):
        res = doctor("-d", "vs-d-cfg", "-d", lab.name("web1"))
        dup = res.one("mac.duplicate", "vs-d-cfg")
        assert (dup["severity"], dup["evidence"]["mac"], dup["evidence"]["running"]) == ("warning", web_mac, 1)
        assert res.one("mac.duplicate", lab.name("web1"))["severity"] == "warning"
        assert res.one("mac.host_conflict", "vs-d-cfg")["evidence"]["host_links"] == lab.macvtap_lower
        assert res.one("mac.invalid", "vs-d-cfg")["evidence"]["reason"] == "all zero"
        assert res.one("perf.emulated_model", "vs-d-cfg")["evidence"]["model"] == "e1000"
        assert {f["evidence"]["queues"] for f in res.find("perf.multiqueue", "vs-d-cfg")} == {8, None}
        assert res.one("sec.trust_guest_rx_filters", "vs-d-cfg")["evidence"]["type"] == "direct"
        assert not [f for f in res.doc["findings"] if f["domain"] == "vs-d-cfg" and f["severity"] == "error"]


def test_ovs_attached_mac_and_port_error(lab: LabSpec, target: Target) -> None:
    tap, ovs = target("ovs1"), lab.name("ovs1")
    good = lab.guest("ovs1").nics[0].mac
    sh("ovs-vsctl", "set", "Interface", tap, "external-ids:attached-mac=52:54:00:ff:ff:ff")
    sh("ovs-vsctl", "add-port", lab.ovs_bridge, "vs-d-ghost")  # a port whose device does not exist
    try:
        res = doctor()  # the ghost port belongs to no domain: look at the whole host
        mism = res.one("ovs.attached_mac_mismatch", ovs)
        assert (mism["evidence"]["ovs_attached_mac"], mism["evidence"]["xml_mac"]) == ("52:54:00:ff:ff:ff", good)
        ghost = res.one("ovs.port_error", subject="vs-d-ghost")
        assert ghost["severity"] == "warning" and "vs-d-ghost" in ghost["evidence"]["error"]
        run_fix(mism)
        assert "ovs.attached_mac_mismatch" not in doctor("-d", ovs).checks(ovs)
    finally:
        sh("ovs-vsctl", "set", "Interface", tap, f"external-ids:attached-mac={good}")
        sh("ovs-vsctl", "--if-exists", "del-port", lab.ovs_bridge, "vs-d-ghost")


def test_ovsdb_unreachable_is_exit_3(lab: LabSpec) -> None:
    """In a private mount namespace the OVSDB socket directory is empty: OVSDB is down for us."""
    res = doctor("-d", lab.name("ovs1"), prefix=in_mount_ns("mount -t tmpfs vs-d-none /run/openvswitch"))
    found = res.one("ovs.not_running")
    assert found["severity"] == "error" and lab.name("ovs1") in found["evidence"]["ovs_vifs"]
    assert res.rc == 3
    assert [e["source"] for e in res.doc["source_errors"]] == ["ovs"]


def test_device_nodes_in_a_mount_namespace(lab: LabSpec) -> None:
    """/dev/net/tun hidden by a tmpfs, /dev/null over /dev/kvm: what a container without them sees."""
    mounts = ("mount -t tmpfs vs-d-none /dev/net", "mount --bind /dev/null /dev/kvm")
    res = doctor("--only", "host", prefix=in_mount_ns(*mounts))
    tun = res.one("host.tun_missing")
    assert (tun["severity"], tun["evidence"]["exists"]) == ("error", False)
    kvm = res.one("host.kvm_unusable")
    assert kvm["evidence"]["device"] == "1:3" and "not 10:232" in kvm["message"]
    assert res.rc == 1
    assert "host.tun_missing" not in doctor("--only", "host").checks()


def test_duplicate_ip_between_a_lease_and_arp(lab: LabSpec, tmp_path: Path) -> None:
    """A second guest statically takes db1's leased address; the host's ARP sees it there."""
    from vifscope.lab.guestxml import guest_domain_xml
    from vifscope.lab.image import build_guest_image
    from vifscope.lab.lab import GUEST_CACHE, LAB_STATE, wait_ready
    from vifscope.lab.topology import Guest, GuestNic, guest_cmdline, interface_xml

    db, db_mac = lab.name("db1"), lab.guest("db1").nics[0].mac or ""
    assert wait_for(lambda: lease_ip(lab.network, db_mac) is not None, 30), "db1 never got a lease"
    addr = lease_ip(lab.network, db_mac)
    dup = Guest(lab.name("dup"), (GuestNic("network", lab.network, f"{addr}/24", mac="52:54:00:81:0e:04"),))
    xml = guest_domain_xml(
        dup.name,
        build_guest_image(GUEST_CACHE),
        [interface_xml(n) for n in dup.nics],
        console_log=LAB_STATE / f"{dup.name}.console",
        cmdline_extra=guest_cmdline(dup),
    )
    db_tap = next(ln.split()[0] for ln in sh(*VIRSH, "domiflist", db).splitlines() if db_mac in ln)
    (LAB_STATE / f"{dup.name}.console").unlink(missing_ok=True)
    try:
        with defined("dom", dup.name, xml, start=True):
            assert not wait_ready([dup.name], 60, print), "duplicate guest did not boot"
            sh("ip", "link", "set", db_tap, "down")  # only the newcomer answers ARP now
            sh("ip", "neigh", "del", str(addr), "dev", lab.network_bridge, check=False)  # forget db1's MAC
            sh("ping", "-c", "2", "-W", "1", str(addr), check=False)
            sh("ip", "link", "set", db_tap, "up")
            res = doctor("-d", db, "-d", dup.name)
            claims = res.one("ip.duplicate", db)["evidence"]
            assert claims["ip"] == addr and "lease" in claims["claims"] and "arp" in claims["claims"]
            assert res.one("ip.duplicate", dup.name)["evidence"]["ip"] == addr
    finally:
        sh("ip", "link", "set", db_tap, "up")
        sh("ip", "neigh", "del", str(addr), "dev", lab.network_bridge, check=False)
        (LAB_STATE / f"{dup.name}.console").unlink(missing_ok=True)


def test_no_lease_after_grace(lab: LabSpec, tmp_path: Path) -> None:
    """multi's second NIC has a static address on the DHCP network: it never asks for a lease."""
    config = tmp_path / "vifscope.toml"
    config.write_text("[doctor]\nno_lease_grace_s = 0\n")
    multi, db = lab.name("multi"), lab.name("db1")
    assert wait_for(lambda: not doctor("--config", str(config), "-d", db).find("ip.no_lease", db), 30)
    found = doctor("--config", str(config), "-d", multi).one("ip.no_lease", multi)
    assert found["evidence"]["network"] == lab.network and found["evidence"]["grace_s"] == 0
    config.write_text("[doctor]\nno_lease_grace_s = 99999\n")
    assert not doctor("--config", str(config), "-d", multi).find("ip.no_lease")


def test_scratch_network_faults(lab: LabSpec) -> None:
    """dnsmasq killed, bridge deleted, network destroyed: each while a running guest uses it."""
    net, br, web = "vs-d-tnet", "vs-d-tnbr", lab.name("web1")
    xml = (
        f"<network><name>{net}</name><bridge name='{br}' stp='off' delay='0'/><ip address='10.81.7.1' "
        "netmask='255.255.255.0'><dhcp><range start='10.81.7.100' end='10.81.7.200'/></dhcp></ip></network>"
    )
    nic = nic_xml("52:54:00:81:0e:05", net, kind="network")
    with defined("net", net, xml, start=True), hotplug(web, nic):
        pid = int(Path(f"/run/libvirt/network/{net}.pid").read_text().split()[0])
        assert not doctor("-d", web).find("network.dhcp_not_running", subject=net)
        sh("kill", str(pid))  # the dnsmasq libvirt started for this test's network
        assert wait_for(
            lambda: not Path(f"/proc/{pid}/comm").exists() or "dnsmasq" not in Path(f"/proc/{pid}/comm").read_text(), 5
        )
        assert doctor("-d", web).one("network.dhcp_not_running", subject=net)["evidence"]["dnsmasq_pid"] == pid
        sh("ip", "link", "del", br)
        assert doctor("-d", web).one("network.bridge_missing", subject=net)["evidence"]["bridge"] == br
        sh(*VIRSH, "net-destroy", net)
        res = doctor("-d", web)
        assert lab.name("web1") in res.one("network.inactive", subject=net)["evidence"]["vifs"]
        assert res.one("network.inactive", subject=net)["fix"].startswith(
            f"virsh -c {res.doc['uri']} net-start -- {net}"
        )


def test_nat_network_rules_and_forwarding(lab: LabSpec) -> None:
    """A NAT network: libvirt's MASQUERADE rules removed for real; ip_forward=0 in a namespace."""
    net, subnet = "vs-d-nat", "10.81.9.0/24"
    xml = (
        f"<network><name>{net}</name><forward mode='nat'/><bridge name='vs-d-natbr' stp='off' delay='0'/>"
        "<ip address='10.81.9.1' netmask='255.255.255.0'/></network>"
    )
    forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    try:
        with defined("net", net, xml, start=True):
            Path("/proc/sys/net/ipv4/ip_forward").write_text(forward)  # libvirt turned it on: give it back
            assert not doctor("--only", "network").find("network.nat_rules_missing", subject=net)
            for proto in (("-p", "tcp", "--to-ports", "1024-65535"), ("-p", "udp", "--to-ports", "1024-65535"), ()):
                rule = ["-s", subnet, "!", "-d", subnet, *proto[:2], "-j", "MASQUERADE", *proto[2:]]
                sh("iptables", "-t", "nat", "-D", "LIBVIRT_PRT", *rule)
            found = doctor("--only", "network").one("network.nat_rules_missing", subject=net)
            assert found["evidence"]["subnet"] == subnet
            with netns("vs-d-nsfw") as ns:
                off = doctor("--only", "host", prefix=in_netns(ns)).one("host.ip_forward_off")
                assert off["evidence"]["net.ipv4.ip_forward"] == 0 and net in off["evidence"]["forwarding_networks"]
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
                assert not doctor("--only", "host", prefix=in_netns(ns)).find("host.ip_forward_off")
    finally:
        Path("/proc/sys/net/ipv4/ip_forward").write_text(forward)


def test_br_netfilter_with_forward_drop_in_a_namespace(lab: LabSpec) -> None:
    with netns("vs-d-nsbr") as ns:
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
        sh("ip", "netns", "exec", ns, "nft", "add table inet vs_d_t")
        sh(
            "ip",
            "netns",
            "exec",
            ns,
            "nft",
            "add chain inet vs_d_t drop_fwd { type filter hook forward priority 0; policy drop; }",
        )
        found = doctor("--only", "host", prefix=in_netns(ns)).one("host.br_netfilter_drop")
        assert found["evidence"]["bridge-nf-call-iptables"] == 1
        assert "inet vs_d_t drop_fwd (nft)" in found["evidence"]["drop_chains"]
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")
        # An inet chain also sees bridged IPv6: still dropped while ip6tables is called.
        v6 = doctor("--only", "host", prefix=in_netns(ns)).one("host.br_netfilter_drop")
        assert v6["evidence"]["bridge-nf-call-iptables"] == 0
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-ip6tables=0")
        assert not doctor("--only", "host", prefix=in_netns(ns)).find("host.br_netfilter_drop")


def test_macvtap_lower_down_and_host_blind_spot(lab: LabSpec) -> None:
    mac1, lower, guest_ip = lab.name("mac1"), lab.macvtap_lower, f"{lab.subnet(4)}.11"
    sh("ip", "addr", "add", f"{lab.subnet(4)}.2/24", "dev", lower)
    try:
        found = doctor("-d", mac1).one("direct.host_unreachable", mac1)
        assert found["evidence"]["host_addresses"] == f"{lab.subnet(4)}.2/24"
        assert not ping_host(guest_ip), "the finding says the host cannot reach the guest: it must not"
        sh("ip", "addr", "del", f"{lab.subnet(4)}.2/24", "dev", lower)
        sh("ip", "link", "add", "vs-d-mvh", "link", lower, "type", "macvlan", "mode", "bridge")
        sh("ip", "addr", "add", f"{lab.subnet(4)}.3/24", "dev", "vs-d-mvh")
        sh("ip", "link", "set", "vs-d-mvh", "up")
        assert not doctor("-d", mac1).find("direct.host_unreachable")
        assert wait_for(lambda: ping_host(guest_ip), 10), "with a host macvlan the guest answers"
        sh("ip", "link", "set", lower, "down")
        low = doctor("-d", mac1).one("direct.lower_down", mac1)
        assert (low["evidence"]["lower"], low["evidence"]["admin_up"]) == (lower, False)
    finally:
        sh("ip", "link", "set", lower, "up")
        sh("ip", "link", "del", "vs-d-mvh", check=False)
        sh("ip", "addr", "del", f"{lab.subnet(4)}.2/24", "dev", lower, check=False)


def ping_host(addr: str) -> bool:
    """From the host itself (the lab's guests live on lab bridges, lab subnets)."""
    return subprocess.run(["ping", "-c", "1", "-W", "1", addr], capture_output=True, check=False).returncode == 0


def test_spoof_filter_and_port_isolation(lab: LabSpec) -> None:
    """A NIC with clean-traffic and <port isolated='yes'/>: protected; isolation removed by hand: error."""
    web = lab.name("web1")
    extra = "<filterref filter='clean-traffic'/><port isolated='yes'/>"
    nic = nic_xml("52:54:00:81:0e:06", lab.bridge, target="vs-d-sec0", extra=extra)
    assert doctor("-d", web).find("sec.no_spoof_filter", web)  # the lab's NICs have no filter
    with hotplug(web, nic):
        res = doctor("-d", web)
        assert not [f for f in res.find("sec.no_spoof_filter", web) if f["target"] == "vs-d-sec0"]
        assert not [f for f in res.find("sec.port_not_isolated", web) if f["target"] == "vs-d-sec0"]
        row = next(r for r in res.doc["isolation"] if r["target"] == "vs-d-sec0")
        assert row["layers"]["host"]["level"] == "isolated" and row["layers"]["virtual"]["level"] == "isolated"
        sh("bridge", "link", "set", "dev", "vs-d-sec0", "isolated", "off")
        found = [f for f in doctor("-d", web).find("sec.port_not_isolated", web) if f["target"] == "vs-d-sec0"]
        assert len(found) == 1 and found[0]["severity"] == "error"
        run_fix(found[0])
        assert link_attr("vs-d-sec0", "linkinfo")["info_slave_data"]["isolated"] is True


def test_guests_sharing_a_bridge_are_one_info_finding_with_a_working_fix(lab: LabSpec, target: Target) -> None:
    """Guests on the lab bridge without isolation: one info finding for the bridge (not one per
    vif), naming the ports; its fix isolates every tap on the bridge (not the uplink) and the
    finding goes away."""
    web_tap = target("web1")
    shared = doctor().one("sec.port_not_isolated", subject=lab.bridge)
    assert (shared["severity"], shared["domain"]) == ("info", None)
    ev = shared["evidence"]
    assert web_tap in ev["ports"].split(", ") and ev["not_isolated"] >= 2 and ev["guest_ports"] >= 2
    assert not doctor().find("sec.port_not_isolated", lab.name("web1"))  # nothing per vif
    ports = [p["ifname"] for p in json.loads(sh("ip", "-j", "link", "show", "master", lab.bridge))]
    before = {p: link_attr(p, "linkinfo")["info_slave_data"]["isolated"] for p in ports}
    try:
        run_fix(shared)
        after = {p: link_attr(p, "linkinfo")["info_slave_data"]["isolated"] for p in ports}
        taps = {p for p in ports if Path(f"/sys/class/net/{p}/tun_flags").exists()}
        assert web_tap in taps and {p for p, iso in after.items() if iso} == taps  # the uplink stays open
        assert not doctor().find("sec.port_not_isolated", subject=lab.bridge)
    finally:
        for p, iso in before.items():
            sh("bridge", "link", "set", "dev", p, "isolated", "on" if iso else "off", check=False)


def test_promiscuous_tap(lab: LabSpec, target: Target) -> None:
    tap, web = target("web1"), lab.name("web1")
    sh("ip", "link", "set", tap, "promisc", "on")
    try:
        found = doctor("-d", web).one("sec.promisc", web)
        assert (found["evidence"]["promiscuity"], found["evidence"]["expected"]) == (2, 1)
    finally:
        sh("ip", "link", "set", tap, "promisc", "off")
    assert not doctor("-d", web).find("sec.promisc")


def test_trust_guest_rx_filters_on_a_running_macvtap(lab: LabSpec) -> None:
    mac1 = lab.name("mac1")
    nic = nic_xml("52:54:00:81:0e:07", lab.macvtap_lower, kind="direct").replace(
        "<interface type='direct'>", "<interface type='direct' trustGuestRxFilters='yes'>"
    )
    with hotplug(mac1, nic):
        found = [
            f for f in doctor("-d", mac1).find("sec.trust_guest_rx_filters", mac1) if f["mac"] == "52:54:00:81:0e:07"
        ]
        assert len(found) == 1


def test_tap_queue_and_qdisc(lab: LabSpec, target: Target) -> None:
    tap, web = target("web1"), lab.name("web1")
    before = link_attr(tap, "txqlen")
    sh("ip", "link", "set", tap, "txqueuelen", "100")
    sh("tc", "qdisc", "add", "dev", tap, "root", "tbf", "rate", "10mbit", "burst", "32kbit", "latency", "400ms")
    try:
        res = doctor("-d", web)
        assert res.one("perf.txqueuelen_low", web)["evidence"]["txqueuelen"] == 100
        qd = res.one("perf.tap_qdisc", web)
        assert qd["evidence"]["qdiscs"] == "root tbf"
        run_fix(qd)
        assert not doctor("-d", web).find("perf.tap_qdisc")
    finally:
        sh("tc", "qdisc", "del", "dev", tap, "root", check=False)
        sh("ip", "link", "set", tap, "txqueuelen", str(before))


def test_per_namespace_sysctls(lab: LabSpec, tmp_path: Path) -> None:
    config = tmp_path / "vifscope.toml"
    max_now = int(Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text())
    config.write_text(f"[doctor]\nconntrack_max_min = {max_now + 1}\n")  # this host's real value, judged strictly
    with netns("vs-d-nssys") as ns:
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.core.somaxconn=128")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_local_port_range=60000 60999")
        res = doctor("--only", "performance", "--config", str(config), prefix=in_netns(ns))
        assert res.one("sysctl.somaxconn_low")["evidence"]["net.core.somaxconn"] == 128
        assert res.one("sysctl.port_range_narrow")["evidence"]["ports"] == 1000
        assert res.one("sysctl.conntrack_max_low")["evidence"]["net.netfilter.nf_conntrack_max"] == max_now
    assert not doctor("--only", "performance").find("sysctl.somaxconn_low")


def test_conntrack_near_full_in_a_namespace(lab: LabSpec) -> None:
    """Fill a namespace's conntrack table past 80 % of nf_conntrack_max with real UDP flows."""
    max_now = int(Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text())
    want = int(max_now * 0.85)
    filler = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "for i in range(int(sys.argv[1])):\n"
        "    s.sendto(b'x',('127.%d.%d.%d'%((i>>16)&255,(i>>8)&255,(i&255) or 1),9))\n"
    )
    with netns("vs-d-nsct") as ns:
        sh("ip", "netns", "exec", ns, "nft", "add table inet vs_d_ct")
        sh("ip", "netns", "exec", ns, "nft", "add chain inet vs_d_ct out { type filter hook output priority 0; }")
        sh("ip", "netns", "exec", ns, "nft", "add rule inet vs_d_ct out ct state new counter")
        sh("ip", "netns", "exec", ns, sys.executable, "-c", filler, str(want))
        found = doctor("--only", "performance", prefix=in_netns(ns)).one("conntrack.near_full")
        assert found["severity"] == "warning" and found["evidence"]["max"] == max_now
        assert found["evidence"]["percent"] > 80
    assert not doctor("--only", "performance").find("conntrack.near_full")


def test_cli_explain_only_and_usage(lab: LabSpec) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vifscope", "doctor", *args], capture_output=True, text=True, check=False
        )

    out = cli("--explain", "bridge.stp_forward_delay")
    assert out.returncode == 0 and "no DHCP after boot" in out.stdout and "False positives" in out.stdout
    bad = cli("--explain", "no.such")
    assert bad.returncode == 2 and "unknown check id" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("--only", "bogus").returncode == 2
    assert cli("--config", "/nonexistent/vs-d.toml").returncode == 2
    assert cli("--probe").returncode == 2
    res = doctor("--only", "security", "-d", lab.name("web1"))
    assert {f["category"] for f in res.doc["findings"]} == {"security"}
    table = cli("-d", lab.name("web1"))
    assert table.returncode == 0 and "sec.no_spoof_filter" in table.stdout and "isolation by layer" in table.stdout
