"""``vifscope flows``: the JSON document and the human view (one table a vif). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vifscope.model.core import SourceError
from vifscope.model.flows import FlowCounters, FlowSample, PeerName, Talker, VifFlows
from vifscope.report.documents import errors_list

if TYPE_CHECKING:
    from rich.table import Table

FLOWS_SCHEMA = "vifscope.flows/1"


def _rate(n: int, seconds: float) -> float:
    return round(n * 8 / seconds, 1) if seconds > 0 else 0.0


def _side(nbytes: int, packets: int, payload: int, seconds: float) -> dict[str, Any]:
    return {"bytes": nbytes, "packets": packets, "payload_bytes": payload, "bps": _rate(nbytes, seconds)}


def peer_dict(p: PeerName) -> dict[str, Any]:
    """``host`` None: the peer vif is on this host."""
    return {"host": p.host, "domain": p.domain, "mac": p.mac}


def talker_dict(t: Talker, seconds: float) -> dict[str, Any]:
    return {
        "key": t.key,
        "peer": t.peer,
        "peer_vif": peer_dict(t.peer_name) if t.peer_name else None,
        "peer_candidates": [peer_dict(p) for p in t.peer_candidates],
        "flows": t.flows,
        "out": _side(t.out_bytes, t.out_packets, t.out_payload, seconds),
        "in": _side(t.in_bytes, t.in_packets, t.in_payload, seconds),
    }


def counters_dict(c: FlowCounters) -> dict[str, int]:
    return {
        "packets": c.packets, "inserted": c.inserted, "failed": c.failed, "entries": c.entries,
        "max_entries": c.max_entries, "evicted": c.evicted, "dropped": c.dropped,
    }  # fmt: skip


def vif_dict(v: VifFlows, seconds: float) -> dict[str, Any]:
    return {
        "domain": v.domain,
        "mac": v.mac,
        "tap": v.tap,
        "ifindex": v.ifindex,
        "out": {"bytes": v.out_bytes, "bps": _rate(v.out_bytes, seconds)},
        "in": {"bytes": v.in_bytes, "bps": _rate(v.in_bytes, seconds)},
        "talkers": [talker_dict(t, seconds) for t in v.talkers],
        "other": talker_dict(v.other, seconds) if v.other else None,
    }


def flows_report(
    vifs: Sequence[VifFlows],
    sample: FlowSample,
    by: str,
    top: int,
    errors: Sequence[SourceError],
    fallback: str = "",
) -> dict[str, Any]:
    """``fallback``: why the BPF collector was passed over (auto chose packet sampling)."""
    return {
        "schema": FLOWS_SCHEMA,
        "seconds": round(sample.seconds, 3),
        "by": by,
        "top": top,
        "collector": sample.collector,
        "sample_rate": sample.sample_rate,
        "estimated": sample.sample_rate > 1,  # counts are sampled frames ×N: estimates
        "fallback_reason": fallback or None,
        "program": sample.program,
        "read_ms": round(sample.read_ms, 2),
        "counters": counters_dict(sample.counters),
        "vifs": [vif_dict(v, sample.seconds) for v in vifs],
        "source_errors": errors_list(errors),
    }


def unavailable_report(reason: str, hint: str, errors: Sequence[SourceError]) -> dict[str, Any]:
    """BPF could not be used: no numbers, the reason (exit 3)."""
    bpf = SourceError("bpf", reason, hint)
    return {"schema": FLOWS_SCHEMA, "vifs": [], "source_errors": errors_list([*errors, bpf])}


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # not reached


def human_rate(bps: float) -> str:
    for unit in ("bit/s", "kbit/s", "Mbit/s", "Gbit/s"):
        if bps < 1000 or unit == "Gbit/s":
            return f"{bps:.0f} {unit}" if unit == "bit/s" else f"{bps:.1f} {unit}"
        bps /= 1000
    return f"{bps:.1f} Gbit/s"  # not reached


def vif_table(v: dict[str, Any], by: str) -> Table:
    from rich.table import Table
    from rich.text import Text

    # Text, not str: rich would read "[...]" in a domain or tap name as markup.
    rates = f"out {human_rate(v['out']['bps'])}  in {human_rate(v['in']['bps'])}"
    title = Text(f"{v['domain']}  {v['tap']}  {v['mac'] or ''}  {rates}", style="bold")
    table = Table(title=title, title_justify="left", expand=False)
    for col in (by, "peer vif", "out", "out rate", "in", "in rate", "flows"):
        table.add_column(col, justify="right" if col not in (by, "peer vif") else "left")
    rows = [*v["talkers"], *([v["other"]] if v["other"] else [])]
    for t in rows:
        table.add_row(
            Text(t["key"]), Text(peer_text(t)), human_size(t["out"]["bytes"]), human_rate(t["out"]["bps"]),
            human_size(t["in"]["bytes"]), human_rate(t["in"]["bps"]), str(t["flows"]),
        )  # fmt: skip
    return table


def peer_text(t: dict[str, Any]) -> str:
    """The peer's name, or which fleet vifs it could be (not guessed)."""
    if t["peer"] or not t.get("peer_candidates"):
        return str(t["peer"] or "")
    labels = [c["domain"] if c["host"] is None else f"{c['host']}/{c['domain']}" for c in t["peer_candidates"]]
    return "ambiguous: " + " | ".join(labels)


def summary_line(doc: dict[str, Any]) -> str:
    c = doc["counters"]
    lost = f", {c['evicted']} evicted, {c['failed']} not recorded (map full)" if c["evicted"] or c["failed"] else ""
    if doc.get("collector") == "packet":  # no map to fill; dropped: the reader fell behind
        lost = f", {c['evicted']} evicted, {c['failed']} not recorded" if c["evicted"] or c["failed"] else ""
        if c.get("dropped"):
            lost += f", {c['dropped']} samples dropped (socket buffer full: counts low, raise --sample)"
    return (
        f"{len(doc['vifs'])} vifs over {doc['seconds']:.1f} s; {c['entries']} flows of {c['max_entries']}"
        f"{lost}; {_collector(doc)}, map read {doc['read_ms']:.1f} ms"
    )


def _collector(doc: dict[str, Any]) -> str:
    if doc.get("collector", "bpf") == "bpf":
        return f"program {doc['program']}"
    n = doc.get("sample_rate", 1)
    how = f"sampling 1:{n}, counts estimated ×{n}" if n > 1 else "every frame, exact"
    why = " (fallback: BPF unavailable)" if doc.get("fallback_reason") else ""
    return f"collector packet ({how}){why}"
