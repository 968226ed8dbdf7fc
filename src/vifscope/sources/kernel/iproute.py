"""Per-link facts from iproute2's JSON output: qdiscs (``tc -j qdisc show``), the neighbour
table (``ip -j neigh show``) and host addresses (``ip -j addr show``). One dump each.
(doctor reads all three over rtnetlink with ``addrdump`` and ``tcdump``; tests hold each pair
to one answer, and the golden cases feed these parsers the commands' saved output.)"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vifscope.model import HostAddress, NeighEntry, Qdisc
from vifscope.sources.cmd import run_json

_INGRESS_KINDS = frozenset({"ingress", "clsact"})


def parse_qdiscs(dump: Iterable[Mapping[str, Any]]) -> tuple[Qdisc, ...]:
    """``tc -j qdisc show``: every qdisc of every link."""
    out = []
    for raw in dump:
        if not raw.get("dev") or not raw.get("kind"):
            continue
        kind = str(raw["kind"])
        out.append(
            Qdisc(
                dev=str(raw["dev"]),
                kind=kind,
                handle=str(raw.get("handle", "")),
                root=bool(raw.get("root", False)),
                ingress=kind in _INGRESS_KINDS,
            )
        )
    return tuple(out)


def parse_neighbors(dump: Iterable[Mapping[str, Any]]) -> tuple[NeighEntry, ...]:
    """``ip -j neigh show``: IPv4 and IPv6 neighbours with their link-layer address."""
    out = []
    for raw in dump:
        if not raw.get("dst") or not raw.get("dev"):
            continue
        states = raw.get("state") or []
        mac = raw.get("lladdr")
        out.append(
            NeighEntry(
                dev=str(raw["dev"]),
                ip=str(raw["dst"]),
                mac=str(mac).lower() if mac else None,
                state=str(states[0]) if states else "NONE",
            )
        )
    return tuple(out)


def parse_addresses(dump: Iterable[Mapping[str, Any]]) -> tuple[HostAddress, ...]:
    """``ip -j addr show``: every address on every link, as "addr/prefix"."""
    out = []
    for link in dump:
        for info in link.get("addr_info") or ():
            if info.get("local") and link.get("ifname"):
                out.append(
                    HostAddress(
                        dev=str(link["ifname"]),
                        address=f"{info['local']}/{info.get('prefixlen', 32)}",
                        family=str(info.get("family", "")),
                    )
                )
    return tuple(out)


def read_qdiscs(timeout: float = 10.0) -> tuple[Qdisc, ...]:
    return parse_qdiscs(run_json(["tc", "-j", "qdisc", "show"], timeout=timeout))


def read_neighbors(timeout: float = 10.0) -> tuple[NeighEntry, ...]:
    return parse_neighbors(run_json(["ip", "-j", "neigh", "show"], timeout=timeout))


def read_addresses(timeout: float = 10.0) -> tuple[HostAddress, ...]:
    return parse_addresses(run_json(["ip", "-j", "addr", "show"], timeout=timeout))
