"""A small load: 10 parallel /metrics scrapers and 10 API readers for a few seconds against
``vifscope exporter`` and ``vifscope serve`` on a ~500-vif synthetic host (libvirtd's test
driver, real bridges and taps in a private netns). No error, both daemons alive, and scrapes
share collections (single-flight). No latency assertion: the figures are bench/load.py's, at
5,000 vifs for 60 s (``make soak``, RELIABILITY.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import load  # noqa: E402  (bench/load.py: the same driver as the soak)


@pytest.fixture(scope="module")
def loaded() -> tuple[dict[str, Any], dict[str, Any]]:
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces, libvirtd)")
    result = load.run_load(f"vs-lt{os.getpid()}", domains=125, seconds=5, scrapers=10, readers=10, prefix="vs-lt")
    return result, load.summary(result)


def test_no_errors_and_both_daemons_alive(loaded: tuple[dict[str, Any], dict[str, Any]]) -> None:
    result, s = loaded
    assert result["vifs"] == 500
    for kind in ("metrics", "api"):
        assert s[kind]["requests"] > 0 and s[kind]["errors"] == 0, s[kind]["first_errors"]
    assert all(s["alive"].values()), s["alive"]


def test_scrapes_share_collections(loaded: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Ten scrapers looping: a collection runs while the others re-ask, so each one serves
    several scrapes (one collection per scrape would be a serialized exporter)."""
    _, s = loaded
    m = s["metrics"]
    assert 0 < m["distinct"] <= m["requests"] / 2, m
