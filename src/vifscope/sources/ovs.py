"""Open vSwitch ports and the bridges holding them, from OVSDB via ``ovs-vsctl --format=json``.

Why OVSDB and not netlink: an OVS port's netlink master is ``ovs-system`` (kernel datapath)
or nothing at all (``datapath_type=netdev``), so only OVSDB knows which bridge holds a tap.
One ``ovs-vsctl`` call lists Bridge, Port and Interface tables; we join them here.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vifscope.model import OvsPort
from vifscope.sources.jsonshape import JsonShapeError, items, obj


class OvsError(RuntimeError):
    """OVSDB could not be read (ovsdb-server down, permission, timeout)."""


@dataclass(frozen=True)
class OvsState:
    """What OVSDB holds: bridge names and every interface with its bridge."""

    bridges: tuple[str, ...]
    ports: tuple[OvsPort, ...]


_QUERY = (
    "--columns=name,ports",
    "list",
    "Bridge",
    "--",
    "--columns=_uuid,interfaces",
    "list",
    "Port",
    "--",
    "--columns=_uuid,name,type,external_ids,error,ofport,options",
    "list",
    "Interface",
)


def _tagged(value: Any, tag: str) -> bool:
    """An OVSDB JSON ``[tag, payload]`` pair ("set", "map", "uuid")."""
    return isinstance(value, list) and len(value) == 2 and value[0] == tag


def _atoms(value: Any) -> list[Any]:
    """OVSDB JSON: a set is ["set", [...]], a one-element set is the bare atom."""
    if _tagged(value, "set"):
        return list(items(value[1], "set"))
    return [value]


def _uuid(value: Any) -> str:
    return str(value[1]) if _tagged(value, "uuid") else str(value)


def _map(value: Any) -> dict[str, str]:
    if not _tagged(value, "map"):
        return {}
    pairs = items(value[1], "map")
    if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise JsonShapeError("map: expected [key, value] pairs")
    return {str(k): str(v) for k, v in pairs}


def _rows(table: Any) -> list[dict[str, Any]]:
    table = obj(table, "table")
    headings = items(table.get("headings", []), "headings")
    return [dict(zip(headings, items(row, "row"), strict=False)) for row in items(table.get("data", []), "data")]


def _scalar(value: Any) -> Any:
    atoms = _atoms(value)
    return atoms[0] if atoms else None


def _port(row: Mapping[str, Any], bridge: str) -> OvsPort:
    ext = _map(row.get("external_ids"))
    options = _map(row.get("options"))  # absent from recordings made before the column was read
    ofport = _scalar(row.get("ofport"))
    error = _scalar(row.get("error"))
    return OvsPort(
        name=str(row.get("name", "")),
        bridge=bridge,
        type=str(row.get("type") or ""),
        iface_id=ext.get("iface-id"),
        attached_mac=(ext.get("attached-mac") or "").lower() or None,
        vm_uuid=ext.get("vm-id") or ext.get("vm-uuid"),
        ofport=ofport if isinstance(ofport, int) else None,
        error=str(error) if error else None,
        vhost_server_path=options.get("vhost-server-path") or None,
    )


def parse_ovs_tables(tables: Sequence[Mapping[str, Any]]) -> OvsState:
    """Join the Bridge, Port, Interface tables of one ``ovs-vsctl --format=json`` call."""
    bridges, ports, ifaces = (_rows(t) for t in tables)
    iface_by_uuid = {_uuid(r["_uuid"]): r for r in ifaces}
    port_by_uuid = {_uuid(r["_uuid"]): r for r in ports}
    out: list[OvsPort] = []
    for br in sorted(bridges, key=lambda r: str(r.get("name"))):
        for port_ref in _atoms(br.get("ports")):
            port = port_by_uuid.get(_uuid(port_ref))
            for iface_ref in _atoms(port.get("interfaces")) if port else []:
                iface = iface_by_uuid.get(_uuid(iface_ref))
                if iface is not None:
                    out.append(_port(iface, str(br["name"])))
    return OvsState(
        bridges=tuple(sorted(str(b["name"]) for b in bridges)),
        ports=tuple(sorted(out, key=lambda p: (p.bridge, p.name))),
    )


def ovs_installed() -> bool:
    return shutil.which("ovs-vsctl") is not None


def read_ovs(timeout: int = 5) -> OvsState:
    """Read OVSDB. Raises OvsError; callers decide whether OVS was needed at all."""
    exe = shutil.which("ovs-vsctl")
    if exe is None:
        raise OvsError("ovs-vsctl is not installed")
    cmd = [exe, f"--timeout={timeout}", "--format=json", *_QUERY]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 2, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OvsError(f"ovs-vsctl timed out after {timeout} s") from exc
    if proc.returncode == -signal.SIGALRM:  # its --timeout: OVSDB accepted, then said nothing (hung)
        raise OvsError(f"ovs-vsctl: no answer from ovsdb-server within {timeout} s")
    if proc.returncode != 0:
        raise OvsError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "ovs-vsctl failed")
    return parse_ovs_output(proc.stdout)


def parse_ovs_output(stdout: str) -> OvsState:
    """The three JSON tables ``read_ovs``'s query prints, one a line, joined; OvsError when
    they are not that (a separate function so the fuzz tests feed it what ovs-vsctl could print)."""
    try:
        tables = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        if len(tables) != 3:
            raise ValueError(f"expected 3 tables, got {len(tables)}")
        return parse_ovs_tables(tables)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: nested too deep for json
        raise OvsError(f"unexpected ovs-vsctl output: {exc}") from exc
