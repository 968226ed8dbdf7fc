"""A rollback target (``Desired`` with every field set, ``xml`` and ``exact`` included) as
JSON and back, so a pending ``--confirm-within`` apply outlives the process that made it.
The apply file format cannot carry it: a network's whole definition and a bridge's exact
ports are rollback-only. Pure.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from vifscope.model.desired import (
    BridgeKind,
    BridgeSpec,
    Desired,
    DomainSpec,
    Ipv4,
    NetMode,
    NetworkSpec,
    VifKind,
    VifSpec,
)


def desired_to_json(desired: Desired) -> dict[str, Any]:
    # StrEnum members are str, so asdict's output dumps as plain JSON strings
    return asdict(desired)


def _bridge(raw: dict[str, Any]) -> BridgeSpec:
    return BridgeSpec(**{**raw, "kind": BridgeKind(raw["kind"]), "uplinks": tuple(raw["uplinks"])})


def _network(raw: dict[str, Any]) -> NetworkSpec:
    ipv4 = raw["ipv4"]
    return NetworkSpec(
        **{
            **raw,
            "mode": NetMode(raw["mode"]) if raw["mode"] else None,
            "ipv4": Ipv4(ipv4["address"], tuple(ipv4["dhcp"]) if ipv4["dhcp"] else None) if ipv4 else None,
            "devices": tuple(raw["devices"]),
        }
    )


def _vif(raw: dict[str, Any]) -> VifSpec:
    return VifSpec(**{**raw, "kind": VifKind(raw["kind"]) if raw["kind"] else None})


def desired_from_json(doc: dict[str, Any]) -> Desired:
    """The inverse of ``desired_to_json``; KeyError/TypeError/ValueError on a damaged file."""
    return Desired(
        tuple(_bridge(b) for b in doc["bridges"]),
        tuple(_network(n) for n in doc["networks"]),
        tuple(DomainSpec(d["name"], tuple(_vif(v) for v in d["interfaces"])) for d in doc["domains"]),
    )
