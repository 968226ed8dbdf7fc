"""Rich output for ``vifscope doctor``: findings grouped by vif, then by host object; the
per-vif isolation summary; skipped checks. Reads the same dicts as ``--json``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from vifscope.checks import Check

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
LEVEL_STYLE = {"isolated": "green", "partial": "yellow", "shared": "red", "unknown": "dim"}


def _evidence(ev: dict[str, Any]) -> str:
    return "  ".join(f"{k}={'-' if v is None else v}" for k, v in ev.items())


def _group_key(f: dict[str, Any]) -> tuple[int, str]:
    if f["domain"] is not None:
        return 0, f"{f['domain']}  {f['target'] or '(no target)'}  {f['mac'] or ''}".rstrip()
    return 1, f"host: {f['subject'] or 'host'}"


def findings_tables(findings: Sequence[dict[str, Any]]) -> list[Table]:
    """One table per vif (domain, target, MAC) and per host object, errors first inside each."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for f in findings:
        groups.setdefault(_group_key(f), []).append(f)
    tables = []
    # Names and fixes are Text, never console markup: a bridge named "br[x]" or a fix holding
    # "[/]" must show as it is (what is shown is what gets pasted).
    for (_, title), items in sorted(groups.items()):
        table = Table(title=Text(title), title_justify="left", title_style="bold", header_style="bold", pad_edge=False)
        table.add_column("SEVERITY", no_wrap=True)
        table.add_column("CHECK", no_wrap=True)
        table.add_column("FINDING", overflow="fold", ratio=3)
        table.add_column("FIX", overflow="fold", ratio=2)
        for f in items:
            finding = Text(f["message"])
            if f["evidence"]:
                finding.append("\n" + _evidence(f["evidence"]), style="dim")
            if f.get("caused_by"):
                finding.append("\nfollows from " + cause_text(f["caused_by"]) + ": fix that first", style="italic")
            sev = Text(f["severity"], style=SEVERITY_STYLE.get(f["severity"], ""))
            table.add_row(sev, f["check"], finding, Text(f["fix"] or "-"))
        tables.append(table)
    return tables


def cause_text(ref: dict[str, Any]) -> str:
    where = ref["subject"] if ref["domain"] is None else f"{ref['domain']} {ref['mac'] or ''}".rstrip()
    return f"{ref['check']} ({where})" if where else ref["check"]


def isolation_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="isolation by layer", title_justify="left", title_style="bold", header_style="bold")
    for col in ("DOMAIN", "#", "TARGET", "PHYSICAL", "HOST", "VIRTUAL", "APPLICATION"):
        table.add_column(col, overflow="fold")
    for row in rows:
        cells = []
        for name in ("physical", "host", "virtual", "application"):
            layer = row["layers"][name]
            cell = Text(layer["level"], style=LEVEL_STYLE.get(layer["level"], ""))
            cell.append("\n" + layer["detail"], style="dim")
            cells.append(cell)
        table.add_row(Text(row["domain"]), str(row["index"]), Text(row["target"] or "-"), *cells)
    return table


def summary_line(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    parts = [f"{s['error']} error(s)", f"{s['warning']} warning(s)", f"{s['info']} info"]
    skipped = f"; {len(doc['skipped'])} check(s) not evaluated" if doc["skipped"] else ""
    followers = sum(bool(f.get("caused_by")) for f in doc["findings"])
    roots = (
        f" ({followers} follow from the others: {len(doc['findings']) - followers} to fix first)" if followers else ""
    )
    return "doctor: " + ", ".join(parts) + roots + skipped


def print_doctor(console: Console, doc: dict[str, Any]) -> None:
    for table in findings_tables(doc["findings"]):
        console.print(table)
    if doc["isolation"]:
        console.print(isolation_table(doc["isolation"]))
    for item in doc["skipped"]:
        console.print(f"[dim]not evaluated: {item['check']}: {item['reason']}[/]", highlight=False)
    for note in doc["notes"]:
        console.print(f"[dim]note: {note}[/]", highlight=False)
    console.print(summary_line(doc), highlight=False)


def explain(check: Check) -> Group:
    """``doctor --explain ID``: the long text of one check."""
    e = check.explain
    parts = [
        Text(f"{check.id} — {check.title}", style="bold"),
        Text(f"category {check.category}, usually {check.severity.value}", style="dim"),
        Text(""),
    ]
    for head, body in (
        ("What", e.what),
        ("Why it matters", e.why),
        ("Fix", e.fix),
        ("False positives", e.false_positives),
    ):
        parts += [Text(head, style="bold"), Text(body), Text("")]
    return Group(*parts)


def checks_table(checks: Sequence[Check]) -> Table:
    table = Table(header_style="bold", pad_edge=False)
    for col in ("CHECK", "CATEGORY", "SEVERITY", "TITLE"):
        table.add_column(col)
    for c in checks:
        table.add_row(c.id, c.category, Text(c.severity.value, style=SEVERITY_STYLE[c.severity.value]), c.title)
    return table
