"""Pure source parsers on real output: ``ip -j -d link show`` elements and ``ovs-vsctl --format=json``."""

from __future__ import annotations

import json

from vifscope.sources.kernel.links import parse_links
from vifscope.sources.ovs import _QUERY, parse_ovs_tables

# Shaped as iproute2 prints them: a tap on a bridge, the bridge, a macvtap, a veth pair, a cross-netns peer.
IP_DUMP = [
    {
        "ifindex": 6,
        "ifname": "vs-x-tap",
        "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
        "mtu": 1500,
        "master": "vs-x-br",
        "operstate": "UP",
        "address": "fe:54:00:00:00:01",
        "linkinfo": {
            "info_kind": "tun",
            "info_data": {"type": "tap", "pi": False, "vnet_hdr": True, "multi_queue": False, "persist": False},
            "info_slave_kind": "bridge",
            "info_slave_data": {"state": "forwarding", "isolated": False},
        },
    },
    {
        "ifindex": 5,
        "ifname": "vs-x-br",
        "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
        "mtu": 1500,
        "operstate": "UP",
        "address": "52:54:00:aa:bb:cc",
        "linkinfo": {"info_kind": "bridge", "info_data": {"forward_delay": 1500, "stp_state": 0}},
    },
    {
        "ifindex": 9,
        "link": "vs-x-v0",
        "ifname": "macvtap0",
        "flags": ["BROADCAST", "MULTICAST", "UP"],
        "mtu": 1500,
        "operstate": "LOWERLAYERDOWN",
        "linkinfo": {"info_kind": "macvtap", "info_data": {"mode": "passthru"}},
    },
    {"ifindex": 8, "link": "vs-x-v1", "ifname": "vs-x-v0", "flags": ["BROADCAST"], "linkinfo": {"info_kind": "veth"}},
    {"ifindex": 7, "link_index": 8, "ifname": "vs-x-v1", "flags": ["BROADCAST", "UP", "LOWER_UP"]},
    {"ifindex": 10, "link_index": 3, "link_netnsid": 0, "ifname": "vs-x-ns", "flags": []},
    {"ifindex": 11, "flags": []},  # no ifname: not a link we can name
]

OVS_LINES = [
    '{"data":[["vs-x-ovs",["set",[["uuid","42a3e96d-1522-4583-bdcd-195663292db8"],'
    '["uuid","8f93c82f-0a16-4e32-b858-3be23864160f"]]]]],"headings":["name","ports"]}',
    '{"data":[[["uuid","42a3e96d-1522-4583-bdcd-195663292db8"],["uuid","8ae094d1-45e2-4933-9f30-204448f5f156"]],'
    '[["uuid","8f93c82f-0a16-4e32-b858-3be23864160f"],["uuid","7ecd9cf2-33fb-4434-81a8-967c5ad344f2"]]],'
    '"headings":["_uuid","interfaces"]}',
    '{"data":[[["uuid","8ae094d1-45e2-4933-9f30-204448f5f156"],"vs-x-t2","",["map",[["attached-mac",'
    '"52:54:00:00:00:01"],["iface-id","abc"]]],["set",[]],1],[["uuid","7ecd9cf2-33fb-4434-81a8-967c5ad344f2"],'
    '"vs-x-ovs","internal",["map",[]],["set",[]],65534]],"headings":["_uuid","name","type","external_ids","error",'
    '"ofport"]}',
]


def test_parse_links_real_shapes() -> None:
    links = {link.name: link for link in parse_links(IP_DUMP)}
    assert set(links) == {"vs-x-tap", "vs-x-br", "macvtap0", "vs-x-v0", "vs-x-v1", "vs-x-ns"}

    t = links["vs-x-tap"]
    assert (t.kind, t.master, t.slave_kind, t.port_state, t.isolated) == (
        "tun",
        "vs-x-br",
        "bridge",
        "forwarding",
        False,
    )
    assert (t.admin_up, t.carrier, t.oper_state, t.mtu, t.mac) == (True, True, "up", 1500, "fe:54:00:00:00:01")

    b = links["vs-x-br"]
    assert (b.kind, b.stp_state, b.forward_delay, b.master) == ("bridge", 0, 1500, None)

    m = links["macvtap0"]
    assert (m.kind, m.lower, m.macvtap_mode) == ("macvtap", "vs-x-v0", "passthru")
    assert (m.admin_up, m.carrier, m.oper_state) == (True, False, "lowerlayerdown")

    assert links["vs-x-v0"].lower == "vs-x-v1"
    assert (links["vs-x-v0"].admin_up, links["vs-x-v0"].oper_state) == (False, "unknown")
    assert links["vs-x-v1"].lower == "vs-x-v0"  # link_index resolved by name in this namespace
    assert links["vs-x-ns"].lower is None  # the peer lives in another namespace


def test_parse_ovs_tables_real_output() -> None:
    state = parse_ovs_tables([json.loads(line) for line in OVS_LINES])
    assert state.bridges == ("vs-x-ovs",)
    ports = {p.name: p for p in state.ports}
    assert set(ports) == {"vs-x-t2", "vs-x-ovs"}
    t2 = ports["vs-x-t2"]
    assert (t2.bridge, t2.type, t2.iface_id, t2.attached_mac, t2.ofport, t2.error) == (
        "vs-x-ovs",
        "",
        "abc",
        "52:54:00:00:00:01",
        1,
        None,
    )
    assert (ports["vs-x-ovs"].type, ports["vs-x-ovs"].ofport) == ("internal", 65534)


def test_parse_ovs_tables_single_port_bridge_error_and_empty_bridge() -> None:
    """One-element sets come as bare atoms; Interface.error as a plain string; ofport may be an empty set."""
    tables = [
        {
            "data": [["br-a", ["uuid", "p1"]], ["br-empty", ["set", []]]],
            "headings": ["name", "ports"],
        },
        {"data": [[["uuid", "p1"], ["set", [["uuid", "i1"], ["uuid", "i2"]]]]], "headings": ["_uuid", "interfaces"]},
        {
            "data": [
                [["uuid", "i1"], "bond-a", "", ["map", [["attached-mac", "52:54:00:AB:CD:EF"]]], "no such device", -1],
                [["uuid", "i2"], "bond-b", "", ["map", []], ["set", []], ["set", []]],
            ],
            "headings": ["_uuid", "name", "type", "external_ids", "error", "ofport"],
        },
    ]
    state = parse_ovs_tables(tables)
    assert state.bridges == ("br-a", "br-empty")
    ports = {p.name: p for p in state.ports}
    assert ports["bond-a"].bridge == ports["bond-b"].bridge == "br-a"
    assert (ports["bond-a"].error, ports["bond-a"].attached_mac, ports["bond-a"].ofport) == (
        "no such device",
        "52:54:00:ab:cd:ef",
        -1,
    )
    assert (ports["bond-b"].error, ports["bond-b"].ofport, ports["bond-b"].iface_id) == (None, None, None)


def test_ovs_query_selects_the_columns_the_parser_reads() -> None:
    assert _QUERY.count("--") == 2
    assert "--columns=name,ports" in _QUERY
    assert "--columns=_uuid,interfaces" in _QUERY
    assert "--columns=_uuid,name,type,external_ids,error,ofport,options" in _QUERY
