"""Guest addresses in ``status --json`` on real guests: a DHCP guest's lease, a static guest seen by
ARP once the host has talked to it, and the EUI-64 link-local the guest's own kernel answers on.

Traffic stays in the lab: the host pings only its own address's subnet on the lab network's
bridge, and the lab's 'outside' namespace pings over the lab bridge's uplink.
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import sh, vif_of, vifscope, wait_for
from tests.e2e.serve_helpers import call, serve
from vifscope.lab.topology import LabSpec
from vifscope.sources.libvirt.agent import NOT_ASKED

pytestmark = pytest.mark.e2e


def status(*extra: str) -> dict[str, Any]:
    res = vifscope("status", "--json", *extra)
    assert res.rc in (0, 1), res.err
    return res.doc


def addresses(doc: dict[str, Any], domain: str, index: int = 0) -> dict[str, dict[str, Any]]:
    return {a["address"]: a for a in vif_of(doc, domain, index)["addresses"]}


def libvirt_leases(network: str, mac: str) -> set[str]:
    """What ``virsh net-dhcp-leases`` says, independently of vifscope."""
    out = sh("virsh", "-c", "qemu:///system", "net-dhcp-leases", network, "--mac", mac)
    return {word.split("/")[0] for line in out.splitlines() for word in line.split() if "/" in word and "." in word}


def host_ping(bridge: str, addr: str) -> bool:
    """From the host over the lab network's own bridge (its address is the network's .1)."""
    cmd = ["ping", "-c", "1", "-W", "1", "-I", bridge, addr]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def reference_eui64(mac: str) -> str:
    """RFC 4291 appendix A by integers (not vifscope's code)."""
    m = int(mac.replace(":", ""), 16)
    iid = ((m >> 24) << 40 | 0xFFFE << 24 | (m & 0xFFFFFF)) ^ (1 << 57)
    return ipaddress.IPv6Address(0xFE80 << 112 | iid).compressed


def test_dhcp_guest_has_its_lease_address(lab: LabSpec) -> None:
    db1, mac = lab.name("db1"), lab.guest("db1").nics[0].mac
    assert mac
    assert wait_for(lambda: bool(libvirt_leases(lab.network, mac)), 90), "db1 got no DHCP lease"
    (leased,) = libvirt_leases(lab.network, mac)
    doc = status()
    assert doc["source_errors"] == []
    got = addresses(doc, db1)
    assert got[leased] == {"address": leased, "prefix": 24, "family": "ipv4", "source": "lease"}
    # Once the host has talked to it the ARP table knows the address too: the lease still wins.
    assert wait_for(lambda: host_ping(lab.network_bridge, leased), 30)
    assert addresses(status(), db1)[leased]["source"] == "lease"


def test_static_guest_appears_via_arp_after_a_ping(lab: LabSpec) -> None:
    """multi's second NIC has a static address on the DHCP network: no lease, only ARP knows it."""
    multi, ip = lab.name("multi"), f"{lab.subnet(2)}.12"
    sh("ip", "neigh", "flush", "to", ip, "dev", lab.network_bridge, check=False)
    assert ip not in addresses(status(), multi, 1), "no lease and no neighbour entry: unknown"
    assert wait_for(lambda: host_ping(lab.network_bridge, ip), 30), "multi does not answer on the lab network"
    got = addresses(status(), multi, 1)
    assert got[ip] == {"address": ip, "prefix": None, "family": "ipv4", "source": "arp"}
    # Seen on the lab network's bridge only: multi's first NIC (another bridge) does not get it.
    assert ip not in addresses(status(), multi, 0)


def test_eui64_link_local_is_the_guests_own(lab: LabSpec) -> None:
    web1, mac = lab.name("web1"), lab.guest("web1").nics[0].mac
    assert mac
    local = reference_eui64(mac)
    doc = status()
    assert addresses(doc, web1)[local] == {"address": local, "prefix": 64, "family": "ipv6", "source": "eui64"}
    off = lab.guest("off").nics[0].mac
    assert off
    assert [a["source"] for a in vif_of(doc, lab.name("off"))["addresses"]] == ["eui64"]
    # The guest's kernel formed the same address: it answers there (from the lab's outside netns).
    ping6 = ["ip", "netns", "exec", lab.netns, "ping", "-6", "-c", "1", "-W", "2", f"{local}%{lab.name('upx')}"]
    assert wait_for(lambda: subprocess.run(ping6, capture_output=True, check=False).returncode == 0, 30)


def test_agent_flag_on_guests_without_an_agent_is_no_error(lab: LabSpec) -> None:
    """The lab's guests run no QEMU agent: --agent asks (read-write), nobody answers, no error."""
    doc = status("--agent")
    assert doc["source_errors"] == []
    assert any(n.startswith("guest agent answered for 0 of ") for n in doc["notes"]), doc["notes"]
    assert status()["notes"] == [NOT_ASKED]


def test_the_api_carries_the_same_addresses(lab: LabSpec, tmp_path: Path) -> None:
    """/api/v1/vifs (serve's deadline snapshots, with their own neighbour dump) says what status says."""
    db1, mac = lab.name("db1"), lab.guest("db1").nics[0].mac
    assert mac
    assert wait_for(lambda: bool(libvirt_leases(lab.network, mac)), 90), "db1 got no DHCP lease"
    (leased,) = libvirt_leases(lab.network, mac)
    static = f"{lab.subnet(2)}.12"
    assert wait_for(lambda: host_ping(lab.network_bridge, static), 30)
    with serve(tmp_path, token=False) as srv:
        ans = call(srv.url + "api/v1/vifs")
    assert ans.status == 200, ans.body[:300]
    api = ans.doc
    assert addresses(api, db1)[leased]["source"] == "lease"
    assert addresses(api, lab.name("multi"), 1)[static]["source"] == "arp"
    assert api["notes"] == [NOT_ASKED]
    for domain, index in ((db1, 0), (lab.name("web1"), 0)):
        assert vif_of(api, domain, index)["addresses"] == vif_of(status(), domain, index)["addresses"]
