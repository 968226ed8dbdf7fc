"""Every crash the fuzzers found, minimized, by name: each raised something other than its
parser's documented error (or broke a report) before its fix. See RELIABILITY.md."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any

import pytest

from tests.fuzz.pipeline import every_report
from tests.fuzz.targets import TARGETS
from tests.golden_checks.loader import CASES_DIR, load_case
from vifscope.sources.kernel.firewall import read_firewall
from vifscope.sources.libvirt.netxml import parse_network_xml

BY_NAME = {t.name: t for t in TARGETS}
EMPTY = '{"headings": [], "data": []}'
OVS_TAIL = f"\n{EMPTY}\n{EMPTY}"

# (name, target, minimized input): the target must return or raise its documented error.
CRASHES: list[tuple[str, str, Any]] = [
    ("xml-lone-surrogate", "domain-xml", "<domain><name>\ud800</name></domain>"),  # UnicodeEncodeError
    ("xml-surrogate-network", "network-xml", "<network>\udfff</network>"),
    ("ovs-empty-set", "ovsdb-json", '{"headings": ["name", "ports"], "data": [["br0", ["set"]]]}' + OVS_TAIL),
    ("ovs-bare-uuid-tag", "ovsdb-json", EMPTY + '\n{"headings": ["_uuid"], "data": [[["uuid"]]]}\n' + EMPTY),
    ("ovs-bare-map-tag", "ovsdb-json", '{"headings": ["name", "ports"], "data": [["br0", ["uuid", "p"]]]}\n'
     '{"headings": ["_uuid", "interfaces"], "data": [[["uuid", "p"], ["uuid", "i"]]]}\n'
     '{"headings": ["_uuid", "external_ids"], "data": [[["uuid", "i"], ["map"]]]}'),
    ("ovs-table-a-string", "ovsdb-json", '"Bridge"' + OVS_TAIL),  # AttributeError
    ("ovs-too-deep", "ovsdb-json", "[" * 100_000 + "]" * 100_000),  # RecursionError in json.loads
    ("nft-item-not-an-object", "nft-json", {"nftables": ["chain"]}),  # AttributeError
    ("nft-chain-without-family", "nft-json", {"nftables": [{"chain": {"hook": "forward"}}]}),  # KeyError
    ("nft-family-a-list", "nft-json", {"nftables": [{"rule": {"family": ["ip"], "expr": [{"accept": None}]}}]}),
    ("nft-xt-name-a-list", "nft-json", {"nftables": [{"rule": {"expr": [{"xt": {"type": "target", "name": []}}]}}]}),
    ("nft-prefix-a-string", "nft-json", {"nftables": [{"rule": {"expr": [
        {"match": {"left": {"payload": {"field": "saddr"}}, "right": {"prefix": "x"}}}, {"masquerade": None}]}}]}),
    ("links-ifindex-text", "links-json", [{"ifname": "a", "ifindex": "1e3"}]),  # ValueError from int()
    ("links-flags-a-number", "links-json", [{"ifname": "a", "flags": 3}]),  # TypeError
    ("links-linkinfo-a-string", "links-json", [{"ifname": "a", "linkinfo": "bridge"}]),  # AttributeError
    ("links-entry-a-string", "links-json", ["eth0"]),
    ("tc-entry-a-string", "tc-json", ["qdisc"]),
    ("neigh-state-an-object", "neigh-json", [{"dst": "10.0.0.1", "dev": "a", "state": {"x": 1}}]),  # KeyError(0)
    ("addr-info-an-object", "addr-json", [{"ifname": "a", "addr_info": 5}]),
]  # fmt: skip


@pytest.mark.parametrize(("target", "data"), [c[1:] for c in CRASHES], ids=[c[0] for c in CRASHES])
def test_a_found_crash_is_a_documented_error_now(target: str, data: Any) -> None:
    t = BY_NAME[target]
    with contextlib.suppress(t.allowed):  # the documented error is an answer too
        t.run(data)


def test_a_wrong_type_no_longer_reaches_the_model() -> None:
    """``ip -j`` never prints mtu as text; taking it as it came left a str where checks compare ints."""
    t = BY_NAME["links-json"]
    with pytest.raises(t.allowed, match="mtu"):
        t.run([{"ifname": "a", "mtu": "1500"}])


def test_an_address_libvirt_would_refuse_is_left_out() -> None:
    """<ip address=' 5 '> reached the NAT check, which raised ValueError from ipaddress."""
    net = parse_network_xml(
        "<network><name>n</name><forward mode='nat'/><ip address=' 5 ' netmask='255.255.255.0'/>"
        "<ip address='10.0.0.1' prefix='24'/></network>", active=True, autostart=True)  # fmt: skip
    assert net.addresses == ("10.0.0.1/24",)


@pytest.mark.parametrize("name", ['evil\n"]\nx["', "nul\0name", "esc\x1b[31m"], ids=["newline", "nul", "escape"])
def test_a_hostile_domain_name_keeps_every_report_valid(name: str) -> None:
    """A newline ended a mermaid statement; a NUL ended Graphviz's scan of the DOT file."""
    snap = load_case(CASES_DIR / "lab-baseline").snap
    vifs = tuple(dataclasses.replace(v, domain=name + v.domain) for v in snap.vifs)
    dot = every_report(dataclasses.replace(snap, vifs=vifs))
    assert "\0" not in dot


def test_nft_json_of_another_shape_is_a_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """doctor guards each fact reader for CommandError: a shape error must arrive as one."""
    from vifscope.sources import cmd
    from vifscope.sources.kernel import firewall

    monkeypatch.setattr(firewall, "run_json", lambda *_a, **_k: json.loads('{"nftables": [{"chain": {"hook": 1}}]}'))
    with pytest.raises(cmd.CommandError, match="another shape"):
        read_firewall()
