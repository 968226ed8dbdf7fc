"""Mutated golden-case inputs through parse -> snapshot -> bind -> checks -> every report
(fixed seeds), and hypothesis-drawn names through every report.

Each report's output is checked, not just produced: JSON reads back, the exposition parses
with prometheus_client's own parser, every mermaid line is one statement, and a sample of the
DOT renders with Graphviz.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.pipeline import Worker, cases, every_report
from tests.golden_checks.loader import CASES_DIR, load_case
from vifscope.model import HostSnapshot

PIPELINE_INPUTS = 240
DOT_SAMPLE = 6


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> list[Worker]:
    root = tmp_path_factory.mktemp("vs-fuzz")
    return [Worker(c, root) for c in cases()]


@pytest.fixture(scope="module")
def outcomes(workers: list[Worker]) -> list[tuple[int, str, str, str]]:
    out = []
    for seed in range(PIPELINE_INPUTS):
        rng = random.Random(f"pipeline:{seed}")
        worker = workers[rng.randrange(len(workers))]
        try:
            o = worker.one(rng)
        except Exception as exc:
            raise AssertionError(f"pipeline input #{seed} ({worker.dir.name}): {type(exc).__name__}: {exc}") from exc
        out.append((seed, o.kind, o.result, o.dot))
    return out


def test_mutated_cases_pass_every_report(outcomes: list[tuple[int, str, str, str]]) -> None:
    results = Counter(result for _, _, result, _ in outcomes)
    kinds = {kind for _, kind, result, _ in outcomes if result == "ok"}
    assert results["ok"] > PIPELINE_INPUTS // 2, results  # most mutations reach the reports
    assert len(kinds) >= 9, kinds  # and nearly every parser's input was the mutated one


def test_a_sample_of_the_dot_renders(outcomes: list[tuple[int, str, str, str]]) -> None:
    # Graphviz is one of the test packages scripts/setup.sh --test installs: its absence is a
    # broken set-up, not a reason to prove nothing.
    assert shutil.which("dot"), "Graphviz is missing: run make setup-test"
    dots = [(seed, dot) for seed, _, result, dot in outcomes if result == "ok"][:: PIPELINE_INPUTS // DOT_SAMPLE]
    for seed, dot in dots:
        proc = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0 and b"<svg" in proc.stdout, f"input #{seed}: {proc.stderr.decode()[:300]}"


@pytest.fixture(scope="module")
def baseline() -> HostSnapshot:
    return load_case(CASES_DIR / "lab-baseline").snap


NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)


@settings(max_examples=60, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(domain=NAMES, target=NAMES, source=NAMES)
def test_any_names_pass_every_report(baseline: HostSnapshot, domain: str, target: str, source: str) -> None:
    """Names libvirt might hold (any printable or control text) on one vif of the lab."""
    first, *rest = baseline.vifs
    vif = dataclasses.replace(first, domain=domain, target=target, source=source)
    every_report(dataclasses.replace(baseline, vifs=(vif, *rest)))


def test_a_case_flattens_to_what_the_loader_reads(tmp_path: Path) -> None:
    """The flattened copy of a patched case loads to the same snapshot as the case itself."""
    case = CASES_DIR / "vif-misbound"
    worker = Worker(case, tmp_path)
    assert load_case(worker.dir).snap == load_case(case).snap
