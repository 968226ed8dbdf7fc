"""Build elements of ``ip -j -d link show`` output, with the key names iproute2 really prints.

Tests feed these through ``vifscope.sources.kernel.links.parse_links`` so the parser is part of
what is tested; nothing here decides a verdict.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

from vifscope.model import DeclaredVif, HostSnapshot, LibvirtNetwork, OvsPort, SourceError
from vifscope.sources.kernel.links import parse_links

_ifindex = count(2)
TAKEN_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _flags(up: bool, carrier: bool) -> list[str]:
    flags = ["BROADCAST", "MULTICAST"]
    if up:
        flags.append("UP")
    if up and carrier:
        flags.append("LOWER_UP")
    return flags


def _operstate(up: bool, carrier: bool) -> str:
    if not up:
        return "DOWN"
    return "UP" if carrier else "LOWERLAYERDOWN"


def _base(name: str, up: bool, carrier: bool, mac: str | None) -> dict[str, Any]:
    return {
        "ifindex": next(_ifindex),
        "ifname": name,
        "flags": _flags(up, carrier),
        "mtu": 1500,
        "operstate": _operstate(up, carrier),
        "address": mac or "fe:54:00:00:00:01",
    }


def tap(
    name: str,
    *,
    master: str | None = None,
    up: bool = True,
    carrier: bool = True,
    slave_kind: str | None = None,
    mac: str | None = None,
) -> dict[str, Any]:
    """A QEMU tap; with ``master`` it is a bridge port (or an OVS port if ``master='ovs-system'``)."""
    raw = _base(name, up, carrier, mac)
    info: dict[str, Any] = {
        "info_kind": "tun",
        "info_data": {"type": "tap", "pi": False, "vnet_hdr": True, "multi_queue": False, "persist": False},
    }
    if master is not None:
        raw["master"] = master
        kind = slave_kind or ("openvswitch" if master == "ovs-system" else "bridge")
        info["info_slave_kind"] = kind
        if kind == "bridge":
            info["info_slave_data"] = {"state": "forwarding", "isolated": False}
    raw["linkinfo"] = info
    return raw


def bridge(name: str, *, up: bool = True, carrier: bool = True) -> dict[str, Any]:
    raw = _base(name, up, carrier, "52:54:00:aa:bb:cc")
    raw["linkinfo"] = {"info_kind": "bridge", "info_data": {"forward_delay": 1500, "stp_state": 0}}
    return raw


def veth(name: str, peer: str, *, master: str | None = None, up: bool = True) -> dict[str, Any]:
    raw = _base(name, up, True, "02:00:00:00:00:01")
    raw["link"] = peer
    info: dict[str, Any] = {"info_kind": "veth"}
    if master is not None:
        raw["master"] = master
        info["info_slave_kind"] = "bridge"
        info["info_slave_data"] = {"state": "forwarding", "isolated": False}
    raw["linkinfo"] = info
    return raw


def phys(name: str, *, up: bool = True, carrier: bool = True) -> dict[str, Any]:
    """A plain device (no linkinfo), like a physical NIC."""
    return _base(name, up, carrier, "00:11:22:33:44:66")


def macvtap(name: str, lower: str, mode: str, *, up: bool = True, carrier: bool = True) -> dict[str, Any]:
    raw = _base(name, up, carrier, "52:54:00:00:00:09")
    raw["link"] = lower
    raw["linkinfo"] = {"info_kind": "macvtap", "info_data": {"mode": mode}}
    return raw


def snapshot(
    vifs: tuple[DeclaredVif, ...] | list[DeclaredVif] = (),
    links: list[dict[str, Any]] | None = None,
    *,
    networks: tuple[LibvirtNetwork, ...] | list[LibvirtNetwork] = (),
    ovs_ports: tuple[OvsPort, ...] | list[OvsPort] = (),
    ovs_bridges: tuple[str, ...] | list[str] = (),
    ovs_available: bool = False,
    errors: tuple[SourceError, ...] | list[SourceError] = (),
) -> HostSnapshot:
    return HostSnapshot(
        host="testhost",
        uri="qemu:///system",
        taken_at=TAKEN_AT,
        vifs=tuple(vifs),
        links=parse_links(links or []),
        ovs_ports=tuple(ovs_ports),
        ovs_bridges=tuple(ovs_bridges),
        ovs_available=ovs_available,
        networks=tuple(networks),
        errors=tuple(errors),
    )
