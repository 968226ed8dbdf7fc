"""The ``vifscope qos`` table for humans (rich), from the same VifQos records as ``--json``."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from vifscope.model.qos import QosVerdict, VifQos
from vifscope.report.qos import direction_text

VERDICT_STYLE: dict[QosVerdict, str] = {
    QosVerdict.ENFORCED: "green",
    QosVerdict.NONE: "dim",
    QosVerdict.INACTIVE: "dim",
    QosVerdict.UNDECLARED: "yellow",
    QosVerdict.UNSUPPORTED: "yellow",
    QosVerdict.PARTIAL: "bold red",
    QosVerdict.DRIFT: "bold red",
    QosVerdict.MISSING: "bold red",
}


def qos_table(vifs: Sequence[VifQos]) -> Table:
    """One row a vif: each direction as "declared → in force [mechanism]", in bit/s."""
    table = Table(header_style="bold", pad_edge=False)
    for col in ("DOMAIN", "#", "TARGET", "TYPE", "INBOUND (guest receives)", "OUTBOUND (guest sends)", "VERDICT"):
        table.add_column(col, overflow="fold")
    for q in vifs:
        verdict = q.verdict.value + (" (config differs)" if q.config_differs else "")
        table.add_row(  # Text, not str: "[htb]" or a domain named "[x]" is not rich markup
            Text(q.domain),
            str(q.index),
            Text(q.target or "-"),
            Text(q.type),
            Text(direction_text(q.inbound)),
            Text(direction_text(q.outbound)),
            Text(verdict, style=VERDICT_STYLE.get(q.verdict, "")),
            style="dim" if q.verdict is QosVerdict.INACTIVE else None,
        )
    return table
