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
    QosSpec,
    VifKind,
    VifSpec,
)
from vifscope.model.qos import BandwidthRate


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


def _rate(raw: dict[str, Any] | None) -> BandwidthRate | None:
    return BandwidthRate(**raw) if raw is not None else None


def _qos(raw: dict[str, Any] | None) -> QosSpec | None:
    """A NIC's QoS to restore (None: the file did not manage it)."""
    if raw is None:
        return None
    return QosSpec(_rate(raw["inbound"]), _rate(raw["outbound"]), raw["backend"])


def _vif(raw: dict[str, Any]) -> VifSpec:
    kind = VifKind(raw["kind"]) if raw["kind"] else None
    return VifSpec(**{**raw, "kind": kind, "qos": _qos(raw.get("qos"))})


def desired_from_json(doc: dict[str, Any]) -> Desired:
    """The inverse of ``desired_to_json``; KeyError/TypeError/ValueError on a damaged file."""
    return Desired(
        tuple(_bridge(b) for b in doc["bridges"]),
        tuple(_network(n) for n in doc["networks"]),
        tuple(DomainSpec(d["name"], tuple(_vif(v) for v in d["interfaces"])) for d in doc["domains"]),
    )
