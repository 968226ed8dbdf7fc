"""QoS metrics: per vif and direction the declared and the enforced average rate and the
verdict (bind/qos.py), for vifs where something is declared or in force.

Labels are bounded: domain, mac, target and direction (inbound / outbound) per series, plus
one verdict label over QosVerdict's eight values (one-hot) -- no rate or qdisc handle ever
becomes a label. Rates are bytes/s (Prometheus' base unit; libvirt's kB/s x 1,000). OVS ports
are left out: a scrape does not read OVSDB's QoS rows (``vifscope qos`` does).

The tc side costs one qdisc dump per scrape plus a class / filter dump per shaped link (the
same read as ``vifscope qos``), bounded by the scrape's deadline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from vifscope.bind.qos import judge
from vifscope.exporter.exposition import Family, Row
from vifscope.model import HostSnapshot, SourceError
from vifscope.model.qos import KILOBYTE, QosVerdict, VifQos
from vifscope.sources.cmd import CommandError
from vifscope.sources.kernel.tcshaping import read_tc_shaping

QOS_LABELS = ("domain", "mac", "target", "direction")
QUIET = frozenset({QosVerdict.NONE, QosVerdict.INACTIVE})


def read_qos(snap: HostSnapshot, timeout: float) -> tuple[tuple[VifQos, ...], SourceError | None]:
    """Every running vif's QoS answer (OVS ports left out), or the tc source's error."""
    running = frozenset(v.target for v in snap.vifs if v.target and v.domain_state.has_taps)
    try:
        tc = read_tc_shaping(running, timeout)  # follows a tap's redirect to the tc backend's ifb
    except CommandError as exc:
        return (), SourceError("tc", str(exc), "does 'tc qdisc show' work here?")
    return tuple(q for q in judge(snap, tc, {}) if q.where != "ovsdb"), None


def qos_families(vifs: Sequence[VifQos]) -> Iterator[Family]:
    declared: list[Row] = []
    enforced: list[Row] = []
    verdicts: list[Row] = []
    for q in vifs:
        if q.verdict in QUIET:
            continue
        for name, d in (("inbound", q.inbound), ("outbound", q.outbound)):
            labels = (q.domain, q.mac or "", q.target or "", name)
            if d.declared is not None and d.declared.average is not None:
                declared.append((labels, float(d.declared.average * KILOBYTE)))
            if d.enforced is not None and d.enforced.average is not None:
                enforced.append((labels, d.enforced.average * KILOBYTE))
            verdicts.extend(((*labels, v.value), 1.0 if d.verdict is v else 0.0) for v in QosVerdict)
    yield Family(
        "vifscope_vif_qos_declared_bytes_per_second", "gauge",
        "Declared average rate of a vif's direction (libvirt <bandwidth> or vifscope's tc-backend metadata).",
        QOS_LABELS, tuple(declared),
    )  # fmt: skip
    yield Family(
        "vifscope_vif_qos_enforced_bytes_per_second", "gauge",
        "Average rate the kernel enforces on a vif's direction (htb class rate, or police rate).",
        QOS_LABELS, tuple(enforced),
    )  # fmt: skip
    yield Family(
        "vifscope_vif_qos_verdict", "gauge", "QoS verdict of a vif's direction, one-hot over every verdict.",
        (*QOS_LABELS, "verdict"), tuple(verdicts),
    )  # fmt: skip
