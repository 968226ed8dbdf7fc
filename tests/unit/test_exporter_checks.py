"""Checks on their own cadence: the first scrape waits for a run, later ones serve the latest
and say how old it is; a failing run is counted and the previous findings stay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from vifscope.bind.join import bind
from vifscope.exporter.checks import CheckRunner, doctor_checks, local_run
from vifscope.exporter.collector import Exporter, render
from vifscope.exporter.worker import ProcessChecks, WorkerSpec
from vifscope.model import Finding, HostSnapshot, Severity, VifBinding
from vifscope.sources.snapshot import take_snapshot

URI = "test:///default"


def test_first_scrape_has_findings_and_their_age() -> None:
    exp = Exporter(URI, audit_log=None, checks=doctor_checks(), checks_interval=3600)
    first = exp.scrape()
    assert first.known_checks and first.checks_age is not None and first.checks_age < 5
    assert first.checks_seconds is not None and first.checks_failures == 0
    time.sleep(0.05)
    second = exp.scrape()
    assert second.known_checks == first.known_checks
    assert second.checks_age is not None and second.checks_age > first.checks_age  # same run, older
    text = render(second).decode()
    assert "\nvifscope_checks_age_seconds " in text and "\nvifscope_checks_duration_seconds " in text
    assert "vifscope_findings{" in text


def test_inline_checks_have_no_age_series() -> None:
    scrape = Exporter(URI, audit_log=None, checks=doctor_checks(), checks_interval=0).scrape()
    assert scrape.known_checks and scrape.checks_age is None
    assert "vifscope_checks_age_seconds" not in render(scrape).decode()


def test_a_failing_run_is_counted_and_keeps_the_last_findings() -> None:
    calls = {"n": 0}
    finding = Finding("x.y", Severity.WARNING, "host", "m")

    def checks(
        _snap: HostSnapshot, _b: tuple[VifBinding, ...]
    ) -> tuple[tuple[Finding, ...], tuple[tuple[str, Severity], ...]]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("a check bug")
        return (finding,), (("x.y", Severity.WARNING),)

    logged: list[str] = []
    runner = CheckRunner(local_run(lambda: take_snapshot(URI), checks), interval=3600, on_error=logged.append)
    runner.run_once()
    runner.run_once()
    run = runner.latest(wait=0)
    assert run is not None and run.findings == (finding,)
    assert runner.failures == 1 and runner.last_error == "RuntimeError: a check bug"
    assert logged == ["vifscope exporter: doctor check run failed: RuntimeError: a check bug"]


def test_negative_intervals_are_usage_errors() -> None:
    for flag in ("--checks-interval", "--declared-max-age"):
        proc = subprocess.run(
            [sys.executable, "-m", "vifscope", "-c", URI, "exporter", flag, "-1"], capture_output=True, text=True
        )
        assert proc.returncode == 2 and f"{flag} must be >= 0" in proc.stderr and "Traceback" not in proc.stderr


def test_worker_process_finds_what_a_local_run_finds() -> None:
    spec = WorkerSpec(URI, 3.0, None, None)
    worker = ProcessChecks(spec)
    try:
        snap = take_snapshot(URI, deep=True)
        local = doctor_checks()(snap, bind(snap))
        remote = worker()
        assert remote == local and remote[1]  # same findings, same evaluated checks
        assert worker() == local  # the same child again (its snapshotter kept)
    finally:
        worker.close()


def test_a_killed_worker_is_a_failed_run_and_the_next_run_starts_a_new_one() -> None:
    worker = ProcessChecks(WorkerSpec(URI, 3.0, None, None))
    runner = CheckRunner(worker, interval=3600)
    try:
        runner.run_once()
        assert runner.failures == 0
        pool = worker._pool
        assert pool is not None
        for proc in list(pool._processes.values()):  # the child dies (OOM killer, kill -9)
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(10)
        runner.run_once()
        assert runner.failures == 1 and "BrokenProcessPool" in (runner.last_error or "")
        runner.run_once()
        assert runner.failures == 1  # a new child answered
    finally:
        worker.close()
