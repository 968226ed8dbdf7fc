"""Prometheus metrics: one snapshot per scrape, turned into metric families.

``Exporter`` is a prometheus_client collector with its own CollectorRegistry (never the
global REGISTRY): every scrape takes a ``DeadlineSnapshotter`` snapshot (each source bounded,
so a stuck libvirtd gives ``vifscope_source_up{source="libvirt"} 0``, not a hung or failed
scrape), binds it, runs the checks, reads the heal count from the audit log, and
``families()`` converts that ``Scrape`` into metrics. ``render_metrics()`` returns the text
exposition, for ``vifscope exporter`` or any HTTP service that mounts it.

Counters come from the same rtnetlink link dump as the verdicts (IFLA_STATS64),
never from libvirt's getAllDomainStats, which re-reads /proc/net/dev once per vif and grows
quadratically with the number of vifs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from vifscope import __version__
from vifscope.bind.join import bind
from vifscope.exporter.audit import action_families
from vifscope.exporter.checks import CheckResult, CheckRunner, ChecksFn, checks_families, finding_families, local_run
from vifscope.exporter.encoding import Body
from vifscope.exporter.exposition import Family, Row, exposition, label_text, to_client
from vifscope.exporter.flight import SingleFlight
from vifscope.exporter.flows import FlowTracker, FlowView, flow_families
from vifscope.exporter.qos import qos_families, read_qos
from vifscope.model import Finding, HostSnapshot, Severity, SourceError, VifBinding, VifStatus
from vifscope.model.qos import VifQos
from vifscope.report.vifstats import guest_counters
from vifscope.sources.audit_log import DEFAULT_AUDIT_LOG, ActionCount, AuditLogError, AuditLogTail
from vifscope.sources.deadline import DeadlineSnapshotter, TimedSnapshot
from vifscope.sources.libvirt.declared import DEFAULT_MAX_AGE

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Identity of a vif series. ``index`` (position in <devices>) keeps two vifs unique even when
# they share a MAC and have no target (a shut-off domain with a duplicated interface).
VIF_LABELS = ("domain", "domain_uuid", "index", "mac", "target", "type", "bridge")

# (GuestCounters field, counter name without _total, help). rx/tx are the guest's view.
VIF_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("rx_bytes", "vifscope_vif_rx_bytes", "Bytes the guest received on this vif (host tap tx)."),
    ("tx_bytes", "vifscope_vif_tx_bytes", "Bytes the guest sent on this vif (host tap rx)."),
    ("rx_packets", "vifscope_vif_rx_packets", "Packets the guest received on this vif."),
    ("tx_packets", "vifscope_vif_tx_packets", "Packets the guest sent on this vif."),
    ("rx_errors", "vifscope_vif_rx_errors", "Receive errors on this vif (guest's view)."),
    ("tx_errors", "vifscope_vif_tx_errors", "Transmit errors on this vif (guest's view)."),
    ("rx_dropped", "vifscope_vif_rx_drops", "Packets dropped on their way to the guest."),
    ("tx_dropped", "vifscope_vif_tx_drops", "Packets the guest sent that the host dropped."),
)

# CheckResult: (findings, the checks that were evaluated with their usual severity): evaluated
# checks with no finding get a 0 series, skipped ones (facts missing) none at all: unknown is not zero.
# Sources that always get a vifscope_source_up series (others once they have been seen).
BASE_SOURCES = ("libvirt", "netlink")
AUDIT_SOURCE = "audit-log"


@dataclass(frozen=True)
class Scrape:
    """Everything one scrape measured; ``families()`` turns it into metrics (pure)."""

    snapshot: HostSnapshot
    bindings: tuple[VifBinding, ...]
    findings: tuple[Finding, ...] = ()
    known_checks: tuple[tuple[str, Severity], ...] = ()  # checks evaluated: 0 series when they found nothing
    actions: tuple[ActionCount, ...] = ()
    sources: tuple[tuple[str, bool], ...] = ()  # (source, up)
    source_seconds: tuple[tuple[str, float], ...] = ()
    seconds: float = 0.0
    checks_age: float | None = None  # seconds since the findings' run finished (None: inline or none)
    checks_seconds: float | None = None  # how long that run took
    checks_failures: int | None = None  # check runs that failed so far (None: no check runner)
    qos: tuple[VifQos, ...] = ()  # exporter/qos.py
    flows: FlowView | None = None  # exporter/flows.py (--flows)


def vif_labels(b: VifBinding) -> tuple[str, ...]:
    """Label values of one vif; never None (an SR-IOV/hostdev or user vif has no target or bridge)."""
    v, exp = b.vif, b.expect
    bridge = exp.bridge if exp.attach in ("linux-bridge", "ovs-bridge") else None
    target = v.target if v.domain_state.has_taps else None  # a shut-off domain's target is stale
    return (v.domain, v.domain_uuid, str(v.index), v.mac or "", target or "", v.type, bridge or "")


# The one-hot status series of a vif: its label text with ,status="..." spliced in before "}".
_STATUS_SUFFIX = tuple((st, f',status="{st.value}"}}') for st in VifStatus)


def vif_families(bindings: Sequence[VifBinding]) -> Iterator[Family]:
    """Per-vif series; each vif's label set is rendered once and shared by its ~17 series
    (at 5,000 vifs that is 80,000 samples: rendering them label by label took 0.2 s)."""
    bound: list[Row] = []
    status: list[Row] = []
    status_texts: list[str] = []
    texts: list[str] = []
    counters: dict[str, list[Row]] = {field: [] for field, _, _ in VIF_COUNTERS}
    counter_texts: list[str] = []
    summary: Counter[str] = Counter()
    for b in bindings:
        labels = vif_labels(b)
        text = label_text(VIF_LABELS, labels)
        texts.append(text)
        summary[b.status.value] += 1
        bound.append((labels, 1.0 if b.status is VifStatus.BOUND else 0.0))
        for st, suffix in _STATUS_SUFFIX:
            status.append(((*labels, st.value), 1.0 if b.status is st else 0.0))
            status_texts.append(text[:-1] + suffix)
        stats = guest_counters(b.link)
        if stats is not None:
            counter_texts.append(text)
            for field, rows in counters.items():
                rows.append((labels, getattr(stats, field)))  # int: written exactly
    help_bound = "1 if the vif is plugged where libvirt says."
    yield Family("vifscope_vif_bound", "gauge", help_bound, VIF_LABELS, tuple(bound), tuple(texts))
    help_status = "The vif's verdict, one-hot over every status."
    yield Family(
        "vifscope_vif_status", "gauge", help_status, (*VIF_LABELS, "status"), tuple(status), tuple(status_texts)
    )
    shared = tuple(counter_texts)
    for field, name, help_text in VIF_COUNTERS:
        yield Family(f"{name}_total", "counter", help_text, VIF_LABELS, tuple(counters[field]), shared)
    per_status = tuple(((st.value,), float(summary[st.value])) for st in VifStatus)
    yield Family("vifscope_vifs", "gauge", "Number of vifs per verdict.", ("status",), per_status)


def host_families(scrape: Scrape) -> Iterator[Family]:
    yield from action_families(scrape.actions)
    yield Family(
        "vifscope_source_up",
        "gauge",
        "1 if the source answered this scrape in time.",
        ("source",),
        tuple(((name,), 1.0 if ok else 0.0) for name, ok in scrape.sources),
    )
    yield Family(
        "vifscope_source_duration_seconds",
        "gauge",
        "How long each source took this scrape.",
        ("source",),
        tuple(((name,), seconds) for name, seconds in scrape.source_seconds),
    )
    yield Family(
        "vifscope_scrape_duration_seconds", "gauge", "Time to collect this scrape.", (), (((), scrape.seconds),)
    )
    yield from checks_families(scrape.checks_age, scrape.checks_seconds, scrape.checks_failures)
    yield Family("vifscope_build_info", "gauge", "vifscope version.", ("version",), (((__version__,), 1.0),))


def families(scrape: Scrape) -> list[Family]:
    """All metric families of one scrape (pure)."""
    return [
        *vif_families(scrape.bindings),
        *finding_families(scrape.findings, scrape.known_checks),
        *qos_families(scrape.qos),
        *flow_families(scrape.flows),
        *host_families(scrape),
    ]


def render(scrape: Scrape) -> bytes:
    """The Prometheus text exposition (format 0.0.4) of one scrape."""
    return exposition(families(scrape))


class Snapshotter(Protocol):
    """What a scrape reads the host through (``DeadlineSnapshotter``, or a test's own source)."""

    uri: str
    deep: bool

    def take(self, timeout: float | None = None) -> TimedSnapshot: ...


Collection = tuple[Scrape, Body]


class Exporter:
    """A prometheus_client collector: each ``collect()`` is one bounded scrape of this host.

    ``checks_interval`` > 0 runs the checks that often (``CheckRunner``) and serves their
    latest result; 0 runs them inside every scrape (small hosts, tests). ``background_checks``
    is what one such run calls instead of running ``checks`` on this process's thread (the CLI
    passes ``exporter_worker.ProcessChecks``: a worker process); ``log`` gets a line per failed
    run. ``declared_max_age`` keeps libvirt's side between scrapes (``DeclaredCache``); None
    re-reads every domain's XML. ``snapshotter`` replaces the host's sources (tests, benchmarks).

    Collections are single-flight: scrapes arriving while one runs share it (and its rendering),
    so N concurrent scrapes cost one collection, and no source is ever read twice at once.
    """

    def __init__(
        self,
        uri: str,
        *,
        timeout: float = 3.0,
        audit_log: Path | None = DEFAULT_AUDIT_LOG,
        checks: ChecksFn | None = None,
        checks_interval: float = 0.0,
        background_checks: Callable[[], CheckResult] | None = None,
        declared_max_age: float | None = DEFAULT_MAX_AGE,
        log: Callable[[str], None] | None = None,
        snapshotter: Snapshotter | None = None,
        flows: FlowTracker | None = None,
    ) -> None:
        inline = checks is not None and checks_interval <= 0 and background_checks is None
        # Checks read HostFacts (sysctls, leases, filters...): only then is a snapshot deep.
        self.snapshotter: Snapshotter = snapshotter or DeadlineSnapshotter(
            uri, timeout, deep=inline, declared_max_age=declared_max_age
        )
        self.checks = checks if inline else None
        self.runner: CheckRunner | None = None
        if background_checks is not None:
            self.runner = CheckRunner(background_checks, checks_interval, log)
        elif checks is not None and not inline:
            deep = DeadlineSnapshotter(uri, timeout, deep=True, declared_max_age=declared_max_age)
            self.runner = CheckRunner(local_run(lambda: deep.take().snapshot, checks), checks_interval, log)
        self.audit = AuditLogTail(audit_log) if audit_log is not None else None
        self.timeout = timeout
        self._seen: dict[str, None] = dict.fromkeys(BASE_SOURCES)  # insertion-ordered set
        self.flight: SingleFlight[Collection] = SingleFlight()
        self.flows = flows

    def collection(self, timeout: float | None = None) -> Collection:
        """The collection in flight, or a new one when none is (``timeout`` caps its sources'
        deadline; a scrape that joins a running collection gets it whatever deadline it ran with)."""
        return self.flight.run(lambda: self._collect(timeout))

    def scrape(self, timeout: float | None = None) -> Scrape:
        return self.collection(timeout)[0]

    def _collect(self, timeout: float | None) -> Collection:
        start = time.monotonic()
        timed = self.snapshotter.take(timeout)
        snap = timed.snapshot
        bindings = bind(snap, addresses=False)  # metrics carry no guest addresses
        findings, known = self.checks(snap, bindings) if self.checks else ((), ())
        actions, audit_error = self._actions()
        qos, qos_error = read_qos(snap, max(0.1, (timeout or self.timeout) - (time.monotonic() - start)))
        flows, flow_error = self._flows(bindings, timeout, start)
        errors = (*snap.errors, *audit_error, *((qos_error,) if qos_error else ()), *flow_error)
        scrape = Scrape(
            snapshot=snap,
            bindings=bindings,
            findings=findings,
            known_checks=known,
            actions=actions,
            sources=self._sources(snap, errors),
            source_seconds=timed.source_seconds,
            qos=qos,
            flows=flows,
        )
        scrape = replace(self._with_checks(scrape), seconds=time.monotonic() - start)
        return scrape, Body(partial(render, scrape))

    def _flows(
        self, bindings: tuple[VifBinding, ...], timeout: float | None, start: float
    ) -> tuple[FlowView | None, tuple[SourceError, ...]]:
        if self.flows is None:
            return None, ()
        budget = max(0.1, (timeout or self.timeout) - (time.monotonic() - start))
        view, err = self.flows.update(bindings, budget)
        return view, (err,) if err else ()

    def _with_checks(self, scrape: Scrape) -> Scrape:
        if self.runner is None:
            return scrape
        # The first scrape waits for the first run (a deep snapshot + checks), later ones never.
        run = self.runner.latest(wait=4 * self.timeout + 30)
        failures = self.runner.failures
        if run is None:
            return replace(scrape, checks_failures=failures)
        return replace(
            scrape,
            findings=run.findings,
            known_checks=run.known,
            checks_age=time.monotonic() - run.finished_at,
            checks_seconds=run.seconds,
            checks_failures=failures,
        )

    def _actions(self) -> tuple[tuple[ActionCount, ...], tuple[SourceError, ...]]:
        if self.audit is None:
            return (), ()
        try:
            return self.audit.read(), ()
        except AuditLogError as exc:
            return (), (SourceError(AUDIT_SOURCE, str(exc), "check the audit log's permissions"),)

    def _sources(self, snap: HostSnapshot, errors: Iterable[SourceError]) -> tuple[tuple[str, bool], ...]:
        """Every source seen so far stays a series: one that recovers goes back to 1, not away."""
        failed = {e.source for e in errors}
        if snap.ovs_available or "ovs" in failed:
            self._seen["ovs"] = None
        if self.audit is not None:
            self._seen[AUDIT_SOURCE] = None
        if self.snapshotter.deep:
            self._seen["facts"] = None
        if self.flows is not None:
            self._seen["bpf"] = None
        self._seen.update(dict.fromkeys(sorted(failed)))
        return tuple((name, name not in failed) for name in self._seen)

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector protocol: one scrape per call."""
        yield from to_client(families(self.scrape()))

    def describe(self) -> list[Metric]:
        # Empty: registering must not trigger a scrape (prometheus_client calls describe()).
        return []

    def registry(self) -> CollectorRegistry:
        """A private registry holding only this exporter (never the global REGISTRY)."""
        reg = CollectorRegistry(auto_describe=False)
        reg.register(self)
        return reg

    def render_metrics(self, timeout: float | None = None) -> bytes:
        """The text exposition of one scrape (``timeout`` caps every source's deadline)."""
        return self.collection(timeout)[1].plain()
