"""What the hub knows about each host after one round of questions: pure, typed views of the
agents' answers. The agent's own vif and finding objects are kept verbatim (``raw``) because
the fleet documents pass them through with a ``host`` added; the fields the fleet checks
read are lifted out and type-checked here, so an agent of another version that lacks one
becomes that host's error, not a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vifscope.fleet.inventory import FleetHost

INACTIVE_STATES = ("shutoff", "nostate", "crashed")  # no QEMU, so no NIC on the wire


class ShapeError(ValueError):
    """An agent's answer is not the shape this hub reads."""


@dataclass(frozen=True)
class RemoteVif:
    host: str
    domain: str
    domain_uuid: str
    active: bool  # the domain runs (or is paused): its MAC is on the wire
    mac: str | None  # lowercase
    target: str | None
    status: str
    addresses: tuple[str, ...]  # guest addresses the agent reported (none when it reports none)
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class AgentInfo:
    """``GET /api/v1/host``."""

    host_id: str
    version: str
    status: str
    libvirt_version: str | None


@dataclass(frozen=True)
class HostAnswer:
    """One host's part of the fleet: its answers, or ``error`` (then nothing else is set)."""

    host: FleetHost
    error: str | None = None
    seconds: float = 0.0
    info: AgentInfo | None = None
    vifs: tuple[RemoteVif, ...] = ()
    source_errors: tuple[Mapping[str, Any], ...] = ()
    findings: tuple[Mapping[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return self.host.name


def _str(doc: Mapping[str, Any], key: str, what: str, *, optional: bool = False) -> Any:
    value = doc.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ShapeError(f"{what}: '{key}' is missing or not text")
    return value


def _mapping(doc: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise ShapeError(f"{what} is not a JSON object")
    return doc


def _list(doc: Mapping[str, Any], key: str, what: str) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise ShapeError(f"{what}: '{key}' is not a list")
    return value


def _addresses(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """``addresses`` is newer than some agents: absent means none reported. Addresses derived
    from the MAC (EUI-64) are left out: they repeat exactly when the MAC does, which
    fleet.mac_duplicate already says."""
    out = []
    for a in raw.get("addresses") or ():
        if isinstance(a, Mapping) and isinstance(a.get("address"), str) and a.get("source") != "eui64":
            out.append(a["address"])
    return tuple(out)


def parse_vif(host: str, doc: Any) -> RemoteVif:
    raw = _mapping(doc, "a vif")
    mac = _str(raw, "mac", "a vif", optional=True)
    return RemoteVif(
        host=host,
        domain=_str(raw, "domain", "a vif"),
        domain_uuid=_str(raw, "domain_uuid", "a vif"),
        active=_str(raw, "domain_state", "a vif") not in INACTIVE_STATES,
        mac=mac.lower() if mac else None,
        target=_str(raw, "target", "a vif", optional=True),
        status=_str(raw, "status", "a vif"),
        addresses=_addresses(raw),
        raw=raw,
    )


def parse_info(doc: Any) -> AgentInfo:
    raw = _mapping(doc, "GET /api/v1/host")
    what = "GET /api/v1/host"
    lib = raw.get("libvirt_version")
    return AgentInfo(
        _str(raw, "host_id", what),
        _str(raw, "version", what),
        _str(raw, "status", what),
        lib if isinstance(lib, str) else None,
    )


def parse_vifs(host: str, doc: Any) -> tuple[tuple[RemoteVif, ...], tuple[Mapping[str, Any], ...]]:
    """``GET /api/v1/vifs`` → (vifs, source errors)."""
    raw = _mapping(doc, "GET /api/v1/vifs")
    vifs = tuple(parse_vif(host, v) for v in _list(raw, "vifs", "GET /api/v1/vifs"))
    errors = tuple(_mapping(e, "a source error") for e in _list(raw, "source_errors", "GET /api/v1/vifs"))
    return vifs, errors


def parse_findings(doc: Any) -> tuple[Mapping[str, Any], ...]:
    raw = _mapping(doc, "GET /api/v1/findings")
    out = []
    for f in _list(raw, "findings", "GET /api/v1/findings"):
        finding = _mapping(f, "a finding")
        _str(finding, "check", "a finding")
        _str(finding, "severity", "a finding")
        out.append(finding)
    return tuple(out)
