"""The fleet inventory: a YAML file listing the agents.

    hosts:
      - name: kvm-a1                    # unique; the HOST column and every JSON "host"
        url: http://10.0.0.11:8777/     # the agent's base URL (vifscope serve)
        token_file: /etc/vifscope/fleet-token   # optional: sent as a bearer token
        ca_file: /etc/vifscope/fleet-ca.pem     # optional: the CA an https agent's certificate is checked against
        labels: {rack: r3, segment: dc1-vlan20} # optional: segment = the L2 the vifs share

An error names the file, the host's position and the key, and says how to fix it. The same
entries may instead be rows of the store's ``fleet_inventory`` table (``vifscope fleet hosts
add``): ``inventory_of_entries`` checks them by the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

HOST_KEYS = ("name", "url", "token_file", "ca_file", "labels")
SEGMENT = "segment"  # the label naming a host's L2 segment (fleet.mac_duplicate)
EXAMPLE = "hosts: [{name: kvm-a1, url: 'http://10.0.0.11:8777/'}]"


class InventoryError(ValueError):
    def __init__(self, message: str, hint: str = "", exit_code: int = 2) -> None:
        super().__init__(message)
        self.hint = hint
        self.exit_code = exit_code  # 2: usage; 3: the store holding the inventory is unavailable


@dataclass(frozen=True)
class FleetHost:
    name: str
    url: str  # always ends with "/"
    token_file: Path | None = None
    labels: tuple[tuple[str, str], ...] = ()
    ca_file: Path | None = None  # None: the system's CAs

    @property
    def segment(self) -> str | None:
        return dict(self.labels).get(SEGMENT)


@dataclass(frozen=True)
class Inventory:
    hosts: tuple[FleetHost, ...]


def _url(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise InventoryError(f"{where}: url must be a string", "e.g. url: http://10.0.0.11:8777/")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InventoryError(f"{where}: url {raw!r} is not an http(s) URL", "e.g. url: http://10.0.0.11:8777/")
    if parts.query or parts.fragment:
        raise InventoryError(f"{where}: url {raw!r} has a query or fragment", "give the agent's base URL only")
    return raw if raw.endswith("/") else raw + "/"


def _labels(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise InventoryError(f"{where}: labels must be a mapping", "e.g. labels: {rack: r3, segment: vlan20}")
    out = []
    for key, value in raw.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InventoryError(f"{where}: label {key!r} must be a name with a text or number value")
        out.append((key, str(value)))
    return tuple(sorted(out))


def parse_host(raw: Any, where: str) -> FleetHost:
    """One host entry (a mapping of HOST_KEYS), checked; InventoryError names ``where``."""
    if not isinstance(raw, Mapping):
        raise InventoryError(f"{where}: each host must be a mapping", EXAMPLE)
    unknown = sorted(str(k) for k in raw if k not in HOST_KEYS)
    if unknown:
        raise InventoryError(f"{where}: unknown key(s) {', '.join(unknown)}", f"known keys: {', '.join(HOST_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InventoryError(f"{where}: name must be a non-empty string", EXAMPLE)
    where = f"{where} ({name})"
    token, ca = _path(raw, "token_file", where), _path(raw, "ca_file", where)
    return FleetHost(name, _url(raw.get("url"), where), token, _labels(raw.get("labels"), where), ca)


def _path(raw: Mapping[str, Any], key: str, where: str) -> Path | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise InventoryError(f"{where}: {key} must be a path")
    return Path(value) if value else None


def parse_inventory(text: str, where: str = "inventory") -> Inventory:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InventoryError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(doc, Mapping) or "hosts" not in doc:
        raise InventoryError(f"{where}: no 'hosts:' list", EXAMPLE)
    extra = sorted(str(k) for k in doc if k != "hosts")
    if extra:
        raise InventoryError(f"{where}: unknown top-level key(s) {', '.join(extra)}", "only 'hosts:' is read")
    raw_hosts = doc["hosts"]
    if not isinstance(raw_hosts, list) or not raw_hosts:
        raise InventoryError(f"{where}: 'hosts:' must be a non-empty list", EXAMPLE)
    return _unique(tuple(parse_host(h, f"{where}: hosts[{i}]") for i, h in enumerate(raw_hosts)), where)


def _unique(hosts: tuple[FleetHost, ...], where: str) -> Inventory:
    seen: set[str] = set()
    for h in hosts:
        if h.name in seen:
            raise InventoryError(f"{where}: host name {h.name!r} appears twice", "names must be unique")
        seen.add(h.name)
    return Inventory(hosts)


def inventory_of_entries(entries: Sequence[Mapping[str, Any]], where: str) -> Inventory:
    """The inventory of host entries kept elsewhere (the store's rows), by the file's rules."""
    if not entries:
        raise InventoryError(f"{where}: no hosts", "add one: vifscope fleet hosts add NAME URL --db URL")
    return _unique(tuple(parse_host(e, where) for e in entries), where)


def load_inventory(path: Path) -> Inventory:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(
            f"cannot read {path}: {exc.strerror or exc}", "pass the inventory with --inventory FILE"
        ) from exc
    return parse_inventory(text, str(path))
