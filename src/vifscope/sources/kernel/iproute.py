"""Per-link facts from iproute2's JSON output: qdiscs (``tc -j qdisc show``), the neighbour
table (``ip -j neigh show``) and host addresses (``ip -j addr show``). One dump each.
(doctor reads all three over rtnetlink with ``addrdump`` and ``tcdump``; tests hold each pair
to one answer, and the golden cases feed these parsers the commands' saved output.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from vifscope.model import HostAddress, NeighEntry, Qdisc
from vifscope.sources.cmd import CommandError, run_json
from vifscope.sources.jsonshape import JsonShapeError, objs, opt_int, opt_str, strs

T = TypeVar("T")

_INGRESS_KINDS = frozenset({"ingress", "clsact"})


def parse_qdiscs(dump: Any) -> tuple[Qdisc, ...]:
    """``tc -j qdisc show``: every qdisc of every link. Raises JsonShapeError."""
    out = []
    for raw in objs(dump, "qdiscs"):
        dev, kind = opt_str(raw.get("dev"), "dev"), opt_str(raw.get("kind"), "kind")
        if not dev or not kind:
            continue
        handle = str(opt_str(raw.get("handle", ""), "handle"))
        root = raw.get("root", False)
        if not isinstance(root, bool):
            raise JsonShapeError(f"root: expected a boolean, got {type(root).__name__}")
        out.append(Qdisc(dev=dev, kind=kind, handle=handle, root=root, ingress=kind in _INGRESS_KINDS))
    return tuple(out)


def parse_neighbors(dump: Any) -> tuple[NeighEntry, ...]:
    """``ip -j neigh show``: IPv4 and IPv6 neighbours with their link-layer address. Raises JsonShapeError."""
    out = []
    for raw in objs(dump, "neighbours"):
        dst, dev = opt_str(raw.get("dst"), "dst"), opt_str(raw.get("dev"), "dev")
        if not dst or not dev:
            continue
        states = strs(raw.get("state"), "state")
        mac = opt_str(raw.get("lladdr"), "lladdr")
        out.append(NeighEntry(dev=dev, ip=dst, mac=mac.lower() if mac else None, state=states[0] if states else "NONE"))
    return tuple(out)


def parse_addresses(dump: Any) -> tuple[HostAddress, ...]:
    """``ip -j addr show``: every address on every link, as "addr/prefix". Raises JsonShapeError."""
    out = []
    for link in objs(dump, "links"):
        ifname = opt_str(link.get("ifname"), "ifname")
        for info in objs(link.get("addr_info"), "addr_info"):
            local = opt_str(info.get("local"), "local")
            if local and ifname:
                prefix = opt_int(info.get("prefixlen", 32), "prefixlen")
                family = opt_str(info.get("family", ""), "family") or ""
                out.append(HostAddress(dev=ifname, address=f"{local}/{prefix}", family=family))
    return tuple(out)


def _shaped(cmd: list[str], parse: Callable[[Any], T], timeout: float) -> T:
    """``parse`` of ``cmd``'s JSON; CommandError (what the fact readers' callers catch) either way."""
    try:
        return parse(run_json(cmd, timeout=timeout))
    except JsonShapeError as exc:
        raise CommandError(f"'{' '.join(cmd)}' printed JSON of another shape: {exc}") from exc


def read_qdiscs(timeout: float = 10.0) -> tuple[Qdisc, ...]:
    return _shaped(["tc", "-j", "qdisc", "show"], parse_qdiscs, timeout)


def read_neighbors(timeout: float = 10.0) -> tuple[NeighEntry, ...]:
    return _shaped(["ip", "-j", "neigh", "show"], parse_neighbors, timeout)


def read_addresses(timeout: float = 10.0) -> tuple[HostAddress, ...]:
    return _shaped(["ip", "-j", "addr", "show"], parse_addresses, timeout)
