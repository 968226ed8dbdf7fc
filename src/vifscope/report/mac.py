"""What ``vifscope mac`` shows: a MAC record as JSON, and each action's terminal view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vifscope.model.mac import MacRecord

if TYPE_CHECKING:
    from rich.console import Console


def when(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def record_dict(r: MacRecord) -> dict[str, Any]:
    return {
        "mac": r.text,
        "state": r.state.value,
        "pool": r.pool,
        "domain": r.domain,
        "host": r.host,
        "changed_at": when(r.changed_at),
        "reusable_at": when(r.reusable_at),
    }


def with_title(d: dict[str, Any]) -> dict[str, Any]:
    from vifscope.checks.macs import TITLES

    return {**d, "title": d["title"] or TITLES.get(d["check"])}


def mac_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Any:
    from rich.table import Table

    table = Table(header_style="bold", pad_edge=False, box=None)
    for col in columns:
        table.add_column(col.upper())
    for row in rows:
        table.add_row(*("-" if row[c] is None else str(row[c]) for c in columns))
    return table


def print_allocated(out: Console, doc: dict[str, Any]) -> None:
    for mac in doc["macs"]:  # one a line: $(vifscope mac allocate --pool p) in a script
        out.print(mac, highlight=False)


def print_pools(out: Console, doc: dict[str, Any]) -> None:
    out.print(mac_table(doc["pools"], ("name", "range", "size", "used", "quarantined", "free", "quarantine_s")))


def print_records(out: Console, doc: dict[str, Any]) -> None:
    out.print(mac_table(doc["macs"], ("mac", "state", "pool", "domain", "host", "reusable_at")))


def print_conflicts(out: Console, doc: dict[str, Any]) -> None:
    from vifscope.report.doctor_tables import findings_tables

    for table in findings_tables(doc["findings"]):
        out.print(table)
    s = doc["summary"]
    store = doc["store"] or "no store (the embedded database does not exist yet)"
    out.print(f"mac conflicts: {s['error']} error(s), {s['warning']} warning(s), {s['info']} info; store: {store}")


def print_fields(out: Console, doc: dict[str, Any]) -> None:
    shown = {k: v for k, v in doc.items() if k not in ("advice", "source_errors")}
    out.print("  ".join(f"{k}={v}" for k, v in shown.items()), highlight=False)
