"""``vifscope qos`` documents: the ``--json`` dict (libvirt's units), the human table's cells
(bit/s), the summary line and the exit code. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from vifscope.model import HostSnapshot, SourceError
from vifscope.model.qos import (
    KIBIBYTE,
    PROBLEM_VERDICTS,
    Bandwidth,
    BandwidthRate,
    DirectionQos,
    Enforced,
    VifQos,
    bits,
)
from vifscope.report.documents import EXIT_OK, EXIT_PROBLEMS, EXIT_SOURCE, errors_list

# Sources whose failure leaves the answer without one side: the declared vifs, the links, tc.
QOS_REQUIRED = ("libvirt", "netlink", "tc")
UNITS = {"average": "kB/s (1000 bytes/s)", "peak": "kB/s (1000 bytes/s)", "floor": "kB/s", "burst": "KiB"}


def _rate_dict(r: BandwidthRate | None) -> dict[str, int | None] | None:
    return asdict(r) if r is not None else None


def _enforced_dict(e: Enforced | None) -> dict[str, Any] | None:
    if e is None:
        return None
    rounded = {
        k: (round(v, 3) if v is not None else None)
        for k, v in (("average", e.average), ("peak", e.peak), ("burst", e.burst))
    }
    return {"mechanism": e.mechanism, **rounded}


def direction_dict(d: DirectionQos) -> dict[str, Any]:
    return {
        "declared": _rate_dict(d.declared),
        "enforced": _enforced_dict(d.enforced),
        "verdict": d.verdict.value,
        "differs": list(d.differs),
    }


def _bandwidth_dict(bw: Bandwidth | None) -> dict[str, Any] | None:
    if bw is None:
        return None
    return {"inbound": _rate_dict(bw.inbound), "outbound": _rate_dict(bw.outbound)}


def vif_qos_dict(q: VifQos) -> dict[str, Any]:
    return {
        "domain": q.domain,
        "index": q.index,
        "mac": q.mac,
        "target": q.target,
        "type": q.type,
        "inbound": direction_dict(q.inbound),
        "outbound": direction_dict(q.outbound),
        "verdict": q.verdict.value,
        "read_from": q.where or None,
        "config_differs": q.config_differs,
        "config": _bandwidth_dict(q.config) if q.config_differs else None,
    }


def qos_report(vifs: Sequence[VifQos], errors: Iterable[SourceError]) -> dict[str, Any]:
    return {
        "vifs": [vif_qos_dict(q) for q in vifs],
        "summary": dict(sorted(Counter(q.verdict.value for q in vifs).items())),
        "units": UNITS,
        "source_errors": errors_list(errors),
    }


def qos_exit_code(snap: HostSnapshot, vifs: Sequence[VifQos], errors: Sequence[SourceError]) -> int:
    """3 when the declared side, the links or tc could not be read (or OVSDB, for a vif on
    OVS), 1 when a vif is missing / drift / partial / undeclared / unsupported, else 0."""
    failed = snap.failed_sources | {e.source for e in errors}
    if any(s in failed for s in QOS_REQUIRED) or ("ovs" in failed and any(q.where == "ovsdb" for q in vifs)):
        return EXIT_SOURCE
    return EXIT_PROBLEMS if any(q.verdict in PROBLEM_VERDICTS for q in vifs) else EXIT_OK


def size(kib: float) -> str:
    """A burst (KiB) as bytes a human reads: "256 KiB", "1.6 KiB", "2.0 MiB"."""
    if kib >= KIBIBYTE:
        return f"{kib / KIBIBYTE:.1f} MiB"
    return f"{kib:.0f} KiB" if kib == int(kib) else f"{kib:.1f} KiB"


def rate_text(average: float | None, peak: float | None, burst: float | None) -> str:
    if average is None:
        return "?"
    text = bits(average)
    if peak is not None and peak != average:
        text += f" (peak {bits(peak)})"
    return text + (f", burst {size(burst)}" if burst is not None else "")


def direction_text(d: DirectionQos) -> str:
    """One table cell: declared, then what is in force (and how), then the verdict; "-" when
    there is neither."""
    dec = d.declared
    floor = f"floor {bits(dec.floor)}" if dec is not None and dec.floor else ""
    if (dec is None or not dec.shapes) and d.enforced is None:
        return f"{floor}\n(a share of the network's inbound)" if floor else "-"
    declared = rate_text(dec.average, dec.peak, dec.burst) if dec is not None and dec.shapes else "-"
    declared += f", {floor}" if floor else ""
    e = d.enforced
    enforced = f"{rate_text(e.average, e.peak, e.burst)} [{e.mechanism}]" if e is not None else "-"
    return f"{declared}\n→ {enforced}\n{d.verdict.value}"


def qos_summary(vifs: Sequence[VifQos]) -> str:
    counts = Counter(q.verdict.value for q in vifs)
    shown = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    return f"{len(vifs)} vif(s): {shown}" if vifs else "no vifs"
