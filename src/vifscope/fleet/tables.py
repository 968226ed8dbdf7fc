"""Rich output for ``vifscope fleet``: the same dicts as ``--json``, with a HOST column."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from vifscope.report.doctor_tables import findings_tables
from vifscope.report.tables import STATUS_STYLE

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _cell(value: Any) -> Text:
    return Text("-" if value is None else str(value))  # Text: names are never console markup


def fleet_vif_table(vifs: Sequence[dict[str, Any]]) -> Table:
    table = Table(header_style="bold", pad_edge=False)
    for col in ("HOST", "DOMAIN", "#", "MAC", "TARGET", "STATUS", "DETAIL"):
        table.add_column(col, overflow="fold", no_wrap=col in ("MAC", "STATUS"))
    for v in vifs:
        status = Text(v["status"], style=STATUS_STYLE.get(v["status"], ""))
        row_style = "dim" if v["status"] == "inactive" else None
        cells = (v["host"], v["domain"], v["index"], v.get("mac"), v.get("target"))
        table.add_row(*map(_cell, cells), status, _cell(v.get("detail")), style=row_style)
    return table


def hosts_table(hosts: Sequence[dict[str, Any]]) -> Table:
    table = Table(header_style="bold", pad_edge=False)
    for col in ("HOST", "STATUS", "VERSION", "VIFS", "SECONDS"):
        table.add_column(col)
    for h in hosts:
        style = {"ok": "green", "degraded": "yellow"}.get(h["status"], "bold red")
        table.add_row(
            _cell(h["name"]), Text(h["status"], style=style), _cell(h["version"]), str(h["vifs"]), f"{h['seconds']:.2f}"
        )
    return table


def print_host_errors(console: Console, errors: Sequence[dict[str, str]]) -> None:
    for e in errors:
        console.print(Text.assemble(("host unreachable: ", "bold red"), f"{e['host']}: {e['error']}"))


def status_line(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(s["vifs"].items()))
    total = sum(s["vifs"].values())
    return f"fleet: {s['answered']} of {s['hosts']} hosts answered; {total} vifs" + (f": {counts}" if counts else "")


def print_doctor(console: Console, doc: dict[str, Any]) -> None:
    by_host: dict[str | None, list[dict[str, Any]]] = {}
    for f in doc["findings"]:
        by_host.setdefault(f["host"] if f["check"] != "fleet.host_unreachable" else None, []).append(f)
    for host, found in sorted(by_host.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
        console.print(Text(f"== {host if host is not None else 'fleet'} ==", style="bold"))
        for table in findings_tables(found):
            console.print(table)
    s = doc["summary"]
    answered = sum(h["answered"] for h in doc["hosts"])
    line = f"fleet doctor: {answered} of {len(doc['hosts'])} hosts answered; "
    console.print(line + f"{s['error']} error(s), {s['warning']} warning(s), {s['info']} info", highlight=False)
