"""doctor's checks for the exporter, on their own cadence instead of on every scrape.

Why: a scrape must stay cheap and bounded (Prometheus scrapes every 15 s and times out),
but doctor's checks read deep host facts (sysctls, nwfilters, firewall, leases, qdiscs)
and at 5,000 vifs a run costs ~1.5 s. ``CheckRunner`` runs them on a daemon thread every
``interval`` seconds against its own deep snapshot; a scrape serves the latest result and
says how old it is (``vifscope_checks_age_seconds``), like node_exporter's textfile
collectors do for slow probes. The first scrape waits for the first run, so findings are
there from the start; a failed run keeps the previous result and is counted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "CheckResult",
    "CheckRun",
    "CheckRunner",
    "ChecksFn",
    "checks_families",
    "doctor_checks",
    "finding_families",
    "local_run",
]

from vifscope.bind.join import bind
from vifscope.checks import ALL_CHECKS, DoctorConfig, evaluate
from vifscope.exporter.exposition import Family
from vifscope.model import Finding, HostSnapshot, Severity, VifBinding

CheckResult = tuple[tuple[Finding, ...], tuple[tuple[str, Severity], ...]]
ChecksFn = Callable[[HostSnapshot, tuple[VifBinding, ...]], CheckResult]


def doctor_checks(config: DoctorConfig | None = None) -> ChecksFn:
    """doctor's checks (vifscope.checks) as the exporter runs them on every scrape."""

    def run(snap: HostSnapshot, bindings: tuple[VifBinding, ...]) -> CheckResult:
        result = evaluate(snap, bindings, config)
        skipped = {check_id for check_id, _ in result.skipped}
        return result.findings, tuple((c.id, c.severity) for c in ALL_CHECKS if c.id not in skipped)

    return run


def checks_families(age: float | None, seconds: float | None, failures: int | None) -> Iterator[Family]:
    """How fresh vifscope_findings is when the checks run on their own cadence."""
    if age is not None:
        help_age = "Age of the doctor check run behind vifscope_findings."
        yield Family("vifscope_checks_age_seconds", "gauge", help_age, (), (((), round(age, 3)),))
    if seconds is not None:
        took = (((), round(seconds, 3)),)
        yield Family("vifscope_checks_duration_seconds", "gauge", "How long that check run took.", (), took)
    if failures is not None:
        failed = (((), float(failures)),)
        yield Family("vifscope_checks_failures_total", "counter", "Check runs that failed.", (), failed)


def finding_families(findings: Sequence[Finding], known: Sequence[tuple[str, Severity]]) -> Iterator[Family]:
    counts: Counter[tuple[str, str]] = Counter({(check, sev.value): 0 for check, sev in known})
    counts.update((f.check, f.severity.value) for f in findings)
    yield Family(
        "vifscope_findings",
        "gauge",
        "Findings of the doctor checks now, per check id and severity.",
        ("check", "severity"),
        tuple((key, float(n)) for key, n in sorted(counts.items())),
    )


@dataclass(frozen=True)
class CheckRun:
    """One completed run: what it found, when its snapshot was taken, how long it took."""

    findings: tuple[Finding, ...]
    known: tuple[tuple[str, Severity], ...]
    finished_at: float  # time.monotonic()
    seconds: float
    failures: int = 0  # runs that raised since the exporter started


def local_run(snapshot: Callable[[], HostSnapshot], checks: ChecksFn) -> Callable[[], CheckResult]:
    """One check pass in this process: a deep snapshot, bind, checks."""

    def run() -> CheckResult:
        snap = snapshot()
        return checks(snap, bind(snap))

    return run


class CheckRunner:
    """Calls ``run`` (one check pass: here, or in a worker process) every ``interval``
    seconds on a daemon thread and keeps the latest result."""

    def __init__(
        self, run: Callable[[], CheckResult], interval: float, on_error: Callable[[str], None] | None = None
    ) -> None:
        self._run, self.interval, self._on_error = run, interval, on_error
        self._latest: CheckRun | None = None
        self._failures = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def latest(self, wait: float) -> CheckRun | None:
        """The newest run; starts the thread on first use and waits up to ``wait`` s for a first run."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="vifscope-checks", daemon=True)
                self._thread.start()
            self._cond.wait_for(lambda: self._latest is not None or self._failures > 0, timeout=wait)
            return self._latest

    def _loop(self) -> None:
        while True:
            started = time.monotonic()
            self.run_once()
            time.sleep(max(0.0, started + self.interval - time.monotonic()))

    def run_once(self) -> None:
        start = time.monotonic()
        try:
            findings, known = self._run()
        except Exception as exc:  # a check bug must not kill the thread: counted, logged, kept
            with self._cond:
                self._failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._cond.notify_all()
            if self._on_error is not None:
                self._on_error(f"vifscope exporter: doctor check run failed: {self.last_error}")
            return
        done = time.monotonic()
        with self._cond:
            self._latest = CheckRun(findings, known, done, done - start, self._failures)
            self._cond.notify_all()

    @property
    def failures(self) -> int:
        with self._cond:
            return self._failures
