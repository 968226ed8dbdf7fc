"""doctor's checks in a child process, for the exporter's background check runs.

Why a process and not the check thread alone: a run is ~1.5 s of Python at 5,000 vifs, and a
thread holds the exporter's GIL for all of it: a scrape landing in a run took ~0.9 s instead of
~0.4 s (bench/exporter_scrape.py, "during-checks"). In a child (spawned: a fresh interpreter,
nothing inherited from the exporter's threads) the run uses another core, and only its
findings (pickled) come back. The child keeps its own deep snapshotter between runs, so its
declared cache and connection persist; if it dies, the next run starts a new one.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from vifscope.bind.join import bind
from vifscope.checks import DoctorConfig
from vifscope.exporter.checks import CheckResult, ChecksFn, doctor_checks
from vifscope.sources.deadline import DeadlineSnapshotter


@dataclass(frozen=True)
class WorkerSpec:
    """What the child needs to build its snapshotter and checks (all picklable)."""

    uri: str
    timeout: float
    declared_max_age: float | None
    config: DoctorConfig | None


class _Worker:
    """The child's state: one per worker process, made by ``_start`` (the pool's initializer)."""

    current: _Worker | None = None

    def __init__(self, spec: WorkerSpec) -> None:
        self.snapshotter = DeadlineSnapshotter(
            spec.uri, spec.timeout, deep=True, declared_max_age=spec.declared_max_age
        )
        self.checks: ChecksFn = doctor_checks(spec.config)


def _start(spec: WorkerSpec) -> None:
    _Worker.current = _Worker(spec)


def _run() -> CheckResult:
    worker = _Worker.current
    if worker is None:
        raise RuntimeError("check worker used before its initializer ran")
    snap = worker.snapshotter.take().snapshot
    return worker.checks(snap, bind(snap))


class ProcessChecks:
    """A callable running one check pass in the child; raises what the run raised."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._pool: ProcessPoolExecutor | None = None

    def __call__(self) -> CheckResult:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(self.spec,),
            )
        try:
            return self._pool.submit(_run).result()
        except BrokenProcessPool:
            self.close()  # the child died (killed, OOM): a new one next run
            raise

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
