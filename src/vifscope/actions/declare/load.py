"""Read an apply file: YAML (or JSON) → the shipped JSON Schema → the checks a schema cannot
say → a frozen ``Desired``. Every error is one line naming where in the file it is
(``networks[1].ipv4.dhcp[0]: …``). Pure apart from reading the schema shipped beside it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

import yaml

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

SCHEMA_FILE = "apply-schema.json"


class LoadError(ValueError):
    """The file is not a valid apply file; the message is one line with its path."""


def schema_text() -> str:
    return resources.files("vifscope.actions.declare").joinpath(SCHEMA_FILE).read_text()


def _where(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


def _validate(doc: Any) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(schema_text()))
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        first = errors[0]
        raise LoadError(f"{_where(first.absolute_path)}: {_HINTS.get(_last(first.absolute_path), first.message)}")


def _last(path: Sequence[Any]) -> str:
    return str(path[-1]) if path else ""


# Fields whose schema is a choice: jsonschema's "is not valid under any of the given schemas" says too little.
_HINTS = {
    "qos": "want none (clear the rates) or {inbound: RATE, outbound: RATE, backend: libvirt|tc} with at least "
    "one direction; RATE: an average in kB/s >= 1, or {average, peak, burst}",
}


def _bridge(raw: dict[str, Any]) -> BridgeSpec:
    return BridgeSpec(
        name=raw["name"],
        kind=BridgeKind(raw.get("kind", "linux")),
        present=raw.get("state", "present") == "present",
        uplinks=tuple(raw.get("uplinks", ())),
        stp=raw.get("stp"),
        mtu=raw.get("mtu"),
        datapath=raw.get("datapath"),
        up=raw.get("up", True),
    )


def _ipv4(raw: dict[str, Any] | None, where: str) -> Ipv4 | None:
    if raw is None:
        return None
    try:
        iface = ipaddress.IPv4Interface(raw["address"])
        dhcp = [ipaddress.IPv4Address(a) for a in raw.get("dhcp", ())]
    except ValueError as exc:
        raise LoadError(f"{where}.ipv4: {exc}") from exc
    for i, addr in enumerate(dhcp):
        if addr not in iface.network:
            raise LoadError(f"{where}.ipv4.dhcp[{i}]: {addr} is not in {iface.network}")
    if dhcp and dhcp[0] > dhcp[1]:
        raise LoadError(f"{where}.ipv4.dhcp: {dhcp[0]} comes after {dhcp[1]}")
    return Ipv4(str(iface), (str(dhcp[0]), str(dhcp[1])) if dhcp else None)


def _network(raw: dict[str, Any], where: str) -> NetworkSpec:
    mode = NetMode(raw["mode"]) if "mode" in raw else None  # left out: kept (isolated when created)
    if mode is not None and not mode.has_own_bridge and "ipv4" in raw:
        raise LoadError(f"{where}.ipv4: a {mode.value}-mode network has no address of its own (libvirt refuses one)")
    if mode is NetMode.BRIDGE and "bridge" not in raw:
        raise LoadError(f"{where}: a bridge-mode network needs bridge: (the existing host bridge)")
    if (mode is NetMode.MACVTAP) != ("devices" in raw):
        raise LoadError(f"{where}: devices: is for macvtap-mode networks, and they need it")
    return NetworkSpec(
        name=raw["name"],
        present=raw.get("state", "present") == "present",
        mode=mode,
        bridge=raw.get("bridge"),
        ipv4=_ipv4(raw.get("ipv4"), where),
        devices=tuple(raw.get("devices", ())),
        autostart=raw.get("autostart", True),
        active=raw.get("active", True),
    )


def _rate(raw: int | dict[str, int] | None) -> BandwidthRate | None:
    if raw is None:
        return None
    if isinstance(raw, int):
        return BandwidthRate(raw)
    return BandwidthRate(raw["average"], raw.get("peak"), raw.get("burst"))


def _qos(raw: str | dict[str, Any] | None, where: str) -> QosSpec | None:
    """``qos:`` of a NIC: left out, None (not managed); ``none``: clear; else the rates."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return QosSpec()
    for name in ("inbound", "outbound"):
        rate = _rate(raw.get(name))
        if rate is not None and rate.peak is not None and rate.peak < (rate.average or 0):
            raise LoadError(f"{where}.qos.{name}.peak: {rate.peak} is below the average {rate.average}")
    return QosSpec(_rate(raw.get("inbound")), _rate(raw.get("outbound")), raw.get("backend", "libvirt"))


def _domain(name: str, raw: dict[str, Any]) -> DomainSpec:
    vifs: list[VifSpec] = []
    for i, vif in enumerate(raw.get("interfaces", ())):
        where = f"domains.{name}.interfaces[{i}]"
        plugs = [k for k in ("network", "bridge", "ovs") if k in vif]
        present = vif.get("state", "present") == "present"
        if present and len(plugs) != 1:
            raise LoadError(f"{where}: give exactly one of network, bridge, ovs (or state: absent)")
        mac = vif["mac"].lower()
        if "pool" in vif and mac != "auto":
            raise LoadError(f"{where}.pool: is for mac: auto (a given MAC is recorded in whichever pool holds it)")
        if mac == "auto" and not present:
            raise LoadError(f"{where}.mac: a NIC to unplug needs its MAC, not auto")
        if mac != "auto" and int(mac[:2], 16) & 1:
            raise LoadError(f"{where}.mac: {mac} is a multicast MAC (first octet odd)")
        if "qos" in vif and not present:
            raise LoadError(f"{where}.qos: a NIC to unplug has no QoS to set")
        kind = VifKind(plugs[0]) if present else None
        source = vif[plugs[0]] if present else None
        extra = (vif.get("isolated"), vif.get("nwfilter"))
        qos = _qos(vif.get("qos"), where)
        vifs.append(
            VifSpec(mac, kind, source, vif.get("model", "virtio"), present, *extra, pool=vif.get("pool"), qos=qos)
        )
    _unique([v.mac for v in vifs if v.mac != "auto"], f"domains.{name}.interfaces", "mac")
    return DomainSpec(name, tuple(vifs))


def _unique(names: Sequence[str], what: str, field: str = "name") -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise LoadError(f"{what}[{i}].{field}: {name!r} is declared twice")
        seen.add(name)


def parse_desired(text: str) -> Desired:
    """The Desired of an apply file's text (YAML; JSON is YAML too). Raises LoadError."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise LoadError(f"{where}not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    doc = {} if doc is None else doc
    _validate(doc)
    bridges = tuple(_bridge(b) for b in doc.get("bridges", ()))
    networks = tuple(_network(n, f"networks[{i}]") for i, n in enumerate(doc.get("networks", ())))
    _unique([b.name for b in bridges], "bridges")
    _unique([n.name for n in networks], "networks")
    domains = tuple(_domain(name, raw or {}) for name, raw in (doc.get("domains") or {}).items())
    return Desired(bridges, networks, domains)
