"""Guest addresses in status: EUI-64 derivation, the per-address precedence agent > lease > ARP >
EUI-64, which leases and neighbours belong to a vif, the JSON shape and the ADDRESSES column.

Inputs go through the real converters: libvirt's lease dicts (``parse_lease``), the agent's
interface dict (``parse_agent_interfaces``), ``ip -j neigh show`` (``parse_neighbors``), ``ip -j
link`` (``parse_links`` via ipjson) and bind() itself.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from dataclasses import replace
from typing import Any

import pytest

from tests.unit.ipjson import bridge, snapshot, tap
from vifscope.bind.addresses import eui64_link_local
from vifscope.bind.join import bind
from vifscope.model import AddressFacts, DeclaredVif, DomainState, HostSnapshot, LibvirtNetwork, VifBinding
from vifscope.report import documents as report
from vifscope.report.tables import addresses_cell, vif_table
from vifscope.sources.kernel.iproute import parse_neighbors
from vifscope.sources.libvirt.guestip import parse_agent_interfaces, parse_lease

MAC = "52:54:00:12:34:56"
LL = "fe80::5054:ff:fe12:3456"


def _reference_eui64(mac: str) -> str:
    """RFC 4291 appendix A by integers, independently of the code under test: the 48-bit MAC
    split 24/24 around 0xfffe, then the universal/local bit (bit 57 of the id) inverted."""
    m = int(mac.replace(":", ""), 16)
    iid = ((m >> 24) << 40 | 0xFFFE << 24 | (m & 0xFFFFFF)) ^ (1 << 57)
    return ipaddress.IPv6Address(0xFE80 << 112 | iid).compressed


@pytest.mark.parametrize(
    ("mac", "want"),
    [
        ("52:54:00:12:34:56", "fe80::5054:ff:fe12:3456"),  # QEMU's default NIC, as a Linux guest shows it
        ("00:0c:29:0c:47:d5", "fe80::20c:29ff:fe0c:47d5"),  # universal MAC: the U/L bit gets set
        ("02:00:00:00:00:01", "fe80::ff:fe00:1"),  # local bit cleared: the first group is 0 and joins "::"
        ("00:00:5e:00:53:01", "fe80::200:5eff:fe00:5301"),  # RFC 7042's documentation MAC
        ("52:54:00:ab:cd:00", "fe80::5054:ff:feab:cd00"),
        ("02:00:00:00:00:00", "fe80::ff:fe00:0"),  # a lone zero group stays ":0" (RFC 5952)
    ],
)
def test_eui64_known_vectors(mac: str, want: str) -> None:
    assert eui64_link_local(mac) == want
    assert _reference_eui64(mac) == want


NOT_UNICAST = [None, "", "00:00:00:00:00:00", "01:00:5e:00:00:01", "52:54:00:12:34", "zz:54:00:12:34:56"]


@pytest.mark.parametrize("mac", NOT_UNICAST)
def test_no_link_local_for_what_is_no_unicast_mac(mac: str | None) -> None:
    assert eui64_link_local(mac) is None


def test_eui64_agrees_with_the_reference_on_random_macs() -> None:
    rng = random.Random(13)
    for _ in range(5000):
        octets = [rng.randrange(256) for _ in range(6)]
        octets[0] &= 0xFE  # unicast
        octets[0] |= rng.choice((0, 2))
        mac = ":".join(f"{o:02x}" for o in octets)
        got = eui64_link_local(mac)
        assert got == _reference_eui64(mac), mac
        # and spelled as inet_ntop spells what the kernel, libvirt and the agent report
        assert got == socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, got))


# --- the join -----------------------------------------------------------------------------------

NET = LibvirtNetwork("lab", "u-net", True, True, "isolated", "vs-br0", leases=1)


def _vif(mac: str = MAC, state: DomainState = DomainState.RUNNING, **kw: Any) -> DeclaredVif:
    base: dict[str, Any] = {"type": "network", "source": "lab", "network": "lab", "target": "vnet0"}
    return DeclaredVif("web", "u-web", state, 0, mac=mac, **{**base, **kw})


def _lease(ip: str, mac: str = MAC, net: str = "lab", prefix: int = 24) -> Any:
    raw = {"iface": "vs-br0", "expirytime": 1, "type": 0, "mac": mac, "ipaddr": ip, "prefix": prefix}
    return parse_lease(net, raw)


def _neigh(ip: str, dev: str = "vs-br0", mac: str = MAC, state: str = "REACHABLE") -> dict[str, Any]:
    return {"dst": ip, "dev": dev, "lladdr": mac, "state": [state]}


def _agent(domain: str, *addrs: tuple[str, int], mac: str = MAC) -> Any:
    ifaces = {
        "lo": {"hwaddr": "00:00:00:00:00:00", "addrs": [{"type": 0, "addr": "127.0.0.1", "prefix": 8}]},
        "eth0": {"hwaddr": mac, "addrs": [{"type": 0 if "." in a else 1, "addr": a, "prefix": p} for a, p in addrs]},
    }
    return tuple(parse_agent_interfaces(domain, ifaces))


def _snap(vifs: list[DeclaredVif], facts: AddressFacts, *, master: str = "vs-br0") -> HostSnapshot:
    links = [bridge("vs-br0"), bridge("vs-br1"), tap("vnet0", master=master), tap("vnet1", master="vs-br1")]
    return replace(snapshot(vifs, links, networks=[NET]), addresses=facts)


def _one(vif: DeclaredVif, facts: AddressFacts, **kw: Any) -> VifBinding:
    (b,) = bind(_snap([vif], facts, **kw))
    return b


def _pairs(b: VifBinding) -> list[tuple[str, str]]:
    return [(a.address, a.source.value) for a in b.addresses]


def test_each_address_keeps_its_best_source() -> None:
    facts = AddressFacts(
        leases=(_lease("10.0.0.5"), _lease("10.0.0.9")),
        neighbors=parse_neighbors([_neigh("10.0.0.5"), _neigh("10.0.0.7"), _neigh("fe80::5054:ff:fe12:3456")]),
        agent=_agent("web", ("10.0.0.9", 24), ("2001:db8::5", 64)),
    )
    assert _pairs(_one(_vif(), facts)) == [
        ("10.0.0.9", "agent"),  # the agent beats the lease for the same address
        ("2001:db8::5", "agent"),
        ("10.0.0.5", "lease"),  # the lease beats ARP for the same address
        ("10.0.0.7", "arp"),
        (LL, "arp"),  # seen on the wire: better than derived
    ]


def test_prefixes_come_from_the_source_that_won() -> None:
    facts = AddressFacts(
        leases=(_lease("10.0.0.5", prefix=24),), neighbors=parse_neighbors([_neigh("10.0.0.5"), _neigh("10.0.0.6")])
    )
    got = {(a.address, a.prefix, a.family) for a in _one(_vif(), facts).addresses}
    assert got == {("10.0.0.5", 24, "ipv4"), ("10.0.0.6", None, "ipv4"), (LL, 64, "ipv6")}


def test_nothing_observed_still_gives_the_link_local() -> None:
    (addr,) = _one(_vif(), AddressFacts()).addresses
    assert (addr.address, addr.prefix, addr.family, addr.source.value) == (LL, 64, "ipv6", "eui64")


def test_a_shut_off_guest_has_only_its_derived_address() -> None:
    facts = AddressFacts(leases=(_lease("10.0.0.5"),), neighbors=parse_neighbors([_neigh("10.0.0.7")]))
    b = _one(_vif(state=DomainState.SHUTOFF), facts)
    assert _pairs(b) == [(LL, "eui64")]


def test_neighbours_count_only_on_the_vifs_bridge_and_when_seen() -> None:
    neigh = [
        _neigh("10.0.0.7"),
        _neigh("10.9.9.9", dev="eth0"),  # the same MAC seen elsewhere is not this guest's address
        _neigh("10.0.0.8", state="FAILED"),
        _neigh("10.0.0.10", state="INCOMPLETE"),
        _neigh("10.0.0.11", state="STALE"),
        _neigh("10.0.0.12", mac="52:54:00:99:99:99"),
        _neigh("ff02::1"),
    ]
    b = _one(_vif(), AddressFacts(neighbors=parse_neighbors(neigh)))
    assert _pairs(b) == [("10.0.0.7", "arp"), ("10.0.0.11", "arp"), (LL, "eui64")]


def test_a_misbound_tap_is_seen_on_the_bridge_it_sits_on() -> None:
    facts = AddressFacts(neighbors=parse_neighbors([_neigh("10.1.0.7", dev="vs-br1")]))
    b = _one(_vif(), facts, master="vs-br1")
    assert b.status.value == "misbound"
    assert ("10.1.0.7", "arp") in _pairs(b)


def test_leases_count_only_from_the_vifs_network() -> None:
    facts = AddressFacts(leases=(_lease("10.0.0.5"), _lease("192.168.5.5", net="other")))
    assert _pairs(_one(_vif(), facts)) == [("10.0.0.5", "lease"), (LL, "eui64")]


def test_a_bridge_vif_on_a_networks_bridge_gets_that_networks_lease() -> None:
    vif = _vif(type="bridge", source="vs-br0", network=None)
    b = _one(vif, AddressFacts(leases=(_lease("10.0.0.5"),)))
    assert ("10.0.0.5", "lease") in _pairs(b)


def test_the_agent_speaks_only_for_its_own_domain() -> None:
    facts = AddressFacts(agent=_agent("other", ("10.0.0.5", 24)))  # same MAC in another domain's guest
    assert _pairs(_one(_vif(), facts)) == [(LL, "eui64")]


def test_an_agent_link_local_other_than_eui64_is_listed_beside_it() -> None:
    """Stable-privacy guests (RFC 7217) pick another link-local: both are shown, each with its source."""
    facts = AddressFacts(agent=_agent("web", ("fe80::1234:5678:9abc:def0", 64)))
    assert _pairs(_one(_vif(), facts)) == [("fe80::1234:5678:9abc:def0", "agent"), (LL, "eui64")]


def test_uppercase_and_scoped_addresses_are_one_address() -> None:
    facts = AddressFacts(agent=_agent("web", ("FE80::5054:FF:FE12:3456%eth0", 64)))
    assert _pairs(_one(_vif(mac=MAC.upper()), facts)) == [(LL, "agent")]


# --- JSON and table -----------------------------------------------------------------------------


def test_json_shape() -> None:
    facts = AddressFacts(leases=(_lease("10.0.0.5"),), notes=("guest agent not asked",))
    snap = _snap([_vif()], facts)
    doc = report.status_report(snap, bind(snap))
    assert doc["notes"] == ["guest agent not asked"]
    assert doc["vifs"][0]["addresses"] == [
        {"address": "10.0.0.5", "prefix": 24, "family": "ipv4", "source": "lease"},
        {"address": LL, "prefix": 64, "family": "ipv6", "source": "eui64"},
    ]


def test_a_vif_without_mac_has_no_addresses() -> None:
    snap = _snap([_vif(mac=None)], AddressFacts(leases=(_lease("10.0.0.5"),)))  # type: ignore[arg-type]
    assert report.status_report(snap, bind(snap))["vifs"][0]["addresses"] == []


V4 = {"address": "10.0.0.5", "prefix": 24, "family": "ipv4", "source": "lease"}
V6 = {"address": "2001:db8::5", "prefix": 64, "family": "ipv6", "source": "agent"}
LLD = {"address": LL, "prefix": 64, "family": "ipv6", "source": "eui64"}
ARP = {"address": "10.0.0.7", "prefix": None, "family": "ipv4", "source": "arp"}


@pytest.mark.parametrize(
    ("addresses", "compact", "wide"),
    [
        ([], "-", "-"),
        ([LLD], LL, f"{LL}/64 eui64"),
        ([V6, V4, LLD], "10.0.0.5 +2", f"2001:db8::5/64 agent\n10.0.0.5/24 lease\n{LL}/64 eui64"),
        ([ARP], "10.0.0.7", "10.0.0.7 arp"),
    ],
)
def test_addresses_cell(addresses: list[dict[str, Any]], compact: str, wide: str) -> None:
    assert addresses_cell(addresses) == compact
    assert addresses_cell(addresses, wide=True) == wide


def test_the_table_has_an_addresses_column() -> None:
    from rich.console import Console

    snap = _snap([_vif()], AddressFacts(leases=(_lease("10.0.0.5"),)))
    vifs = report.status_report(snap, bind(snap))["vifs"]
    for wide, shown in ((False, "10.0.0.5 +1"), (True, "10.0.0.5/24 lease")):
        console = Console(width=250, record=True)
        console.print(vif_table(vifs, wide=wide))
        text = console.export_text()
        assert "ADDRESSES" in text.splitlines()[1]
        assert shown in text


def test_an_unreadable_neighbour_table_costs_only_the_arp_source() -> None:
    """A failed neighbour dump is a "neigh" source error: no ARP addresses, the verdicts and the
    exit code stand (status needs libvirt and the links, not the neighbours)."""
    from vifscope.model import SourceError

    snap = replace(
        _snap([_vif()], AddressFacts(leases=(_lease("10.0.0.5"),))),
        errors=(SourceError("neigh", "rtnetlink neighbour dump failed: boom"),),
    )
    bindings = bind(snap)
    assert [b.status.value for b in bindings] == ["bound"]
    assert report.exit_code(snap, bindings) == 0
    assert _pairs(bindings[0]) == [("10.0.0.5", "lease"), (LL, "eui64")]


def test_bind_without_addresses_leaves_them_out_and_the_verdicts_alone() -> None:
    snap = _snap([_vif(), _vif(state=DomainState.SHUTOFF, target=None)], AddressFacts(leases=(_lease("10.0.0.5"),)))
    with_addresses, without = bind(snap), bind(snap, addresses=False)
    assert [b.addresses for b in without] == [(), ()]
    assert [replace(b, addresses=()) for b in with_addresses] == list(without)
    assert all(b.addresses for b in with_addresses)
