"""Rich tables for humans. Reads the same dicts as ``--json`` (report.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def make_console(stderr: bool = False) -> Console:
    """A console; when piped (no terminal) use a wide fixed width so rows stay one line."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(stderr=stderr, width=width)


STATUS_STYLE: dict[str, str] = {
    "bound": "green",
    "inactive": "dim",
    "unverified": "cyan",
    "down": "yellow",
    "misbound": "bold red",
    "detached": "bold red",
    "missing": "bold red",
}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def addresses_cell(addresses: Sequence[dict[str, Any]], wide: bool = False) -> str:
    """The first IPv4 address (else the first address) and how many more, e.g. "10.0.0.5 +2";
    ``wide``: every address with its prefix and source, one a line."""
    if wide:
        return "\n".join(_address_line(a) for a in addresses) or "-"
    if not addresses:
        return "-"
    first = next((a for a in addresses if a["family"] == "ipv4"), addresses[0])
    more = len(addresses) - 1
    return str(first["address"]) + (f" +{more}" if more else "")


def _address_line(a: dict[str, Any]) -> str:
    prefix = f"/{a['prefix']}" if a["prefix"] is not None else ""
    return f"{a['address']}{prefix} {a['source']}"


def vif_table(vifs: Sequence[dict[str, Any]], wide: bool = False) -> Table:
    table = Table(show_lines=False, header_style="bold", pad_edge=False)
    for col in ("DOMAIN", "#", "TYPE", "MAC", "SOURCE", "TARGET", "ADDRESSES", "STATUS", "DETAIL"):
        table.add_column(col, overflow="fold", no_wrap=col in ("MAC", "STATUS") or (col == "ADDRESSES" and wide))
    for v in vifs:
        source = v["source"]
        if v["type"] == "network" and v["bridge"] and v["bridge"] != source:
            source = f"{source} ({v['bridge']})"
        status = Text(v["status"], style=STATUS_STYLE.get(v["status"], ""))
        row_style = "dim" if v["status"] == "inactive" else None
        table.add_row(
            v["domain"],
            str(v["index"]),
            v["type"],
            _cell(v["mac"]),
            _cell(source),
            _cell(v["target"]),
            addresses_cell(v.get("addresses", ()), wide),
            status,
            v["detail"],
            style=row_style,
        )
    return table


def network_table(nets: Sequence[dict[str, Any]]) -> Table:
    table = Table(header_style="bold", pad_edge=False)
    for col in ("NAME", "MODE", "BRIDGE", "ACTIVE", "AUTOSTART", "DHCP RANGE", "LEASES", "BRIDGE STATE"):
        table.add_column(col, overflow="fold")
    for n in nets:
        ranges = ", ".join(f"{r['start']}-{r['end']}" for r in n["dhcp_ranges"]) or "-"
        bridge = n["bridge"] or (",".join(n["forward_devs"]) or "-")
        if n["bridge"] is None:
            state = Text("-", style="dim")
        elif not n["bridge_exists"]:
            state = Text("missing", style="bold red" if n["active"] else "dim")
        else:
            state = Text("up" if n["bridge_up"] else "down", style="green" if n["bridge_up"] else "yellow")
        table.add_row(
            n["name"],
            n["mode"],
            bridge,
            Text(_cell(n["active"]), style="green" if n["active"] else "dim"),
            _cell(n["autostart"]),
            ranges,
            _cell(n["leases"]),
            state,
        )
    return table


def print_errors(console: Console, errors: Sequence[dict[str, str]]) -> None:
    for err in errors:
        hint = f"  (hint: {err['hint']})" if err.get("hint") else ""
        console.print(f"[yellow]warning:[/] {err['source']}: {err['error']}{hint}", highlight=False)
