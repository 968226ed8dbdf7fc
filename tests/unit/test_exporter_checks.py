"""Checks on their own cadence: the first scrape waits for a run, later ones serve the latest
and say how old it is; a failing run is counted and the previous findings stay."""

from __future__ import annotations

import subprocess
import sys
import time

from vifscope.exporter import Exporter, render
from vifscope.exporter_checks import CheckRunner, doctor_checks
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

    runner = CheckRunner(lambda: take_snapshot(URI), checks, interval=3600)
    runner.run_once()
    runner.run_once()
    run = runner.latest(wait=0)
    assert run is not None and run.findings == (finding,)
    assert runner.failures == 1 and runner.last_error == "RuntimeError: a check bug"


def test_negative_intervals_are_usage_errors() -> None:
    for flag in ("--checks-interval", "--declared-max-age"):
        proc = subprocess.run(
            [sys.executable, "-m", "vifscope", "-c", URI, "exporter", flag, "-1"], capture_output=True, text=True
        )
        assert proc.returncode == 2 and f"{flag} must be >= 0" in proc.stderr and "Traceback" not in proc.stderr
