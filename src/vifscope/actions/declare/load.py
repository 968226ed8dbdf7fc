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

from vifscope.model.desired import BridgeKind, BridgeSpec, Desired, Ipv4, NetMode, NetworkSpec

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
        raise LoadError(f"{_where(first.absolute_path)}: {first.message}")


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
    mode = NetMode(raw.get("mode", "isolated"))
    if not mode.has_own_bridge and "ipv4" in raw:
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


def _unique(names: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise LoadError(f"{what}[{i}].name: {name!r} is declared twice")
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
    if isinstance(doc, dict) and "domains" in doc:
        raise LoadError("domains: guest vifs are not applied by this version yet (bridges and networks are)")
    _validate(doc)
    bridges = tuple(_bridge(b) for b in doc.get("bridges", ()))
    networks = tuple(_network(n, f"networks[{i}]") for i, n in enumerate(doc.get("networks", ())))
    _unique([b.name for b in bridges], "bridges")
    _unique([n.name for n in networks], "networks")
    return Desired(bridges, networks)
