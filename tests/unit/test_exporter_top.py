"""``vifscope top``'s pure parts: rates from two real-shaped link dumps, sorting, the JSON rows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.ipjson import bridge, snapshot, tap
from tests.unit.test_exporter import vif, with_stats
from vifscope.bind.join import bind
from vifscope.model import VifBinding
from vifscope.top.app import SORTS, VifRow, human_bits, row_dict, sample_rows, sort_rows

VIFS = [vif("a", 0, "bridge", "vnet0", source="br0"), vif("b", 0, "bridge", "vnet1", source="br0")]


def bindings(links: list[dict[str, Any]]) -> tuple[VifBinding, ...]:
    return bind(snapshot(VIFS, [bridge("br0"), *links]))


def two_samples(
    a0: tuple[int, int], a1: tuple[int, int], b0: tuple[int, int], b1: tuple[int, int], seconds: float = 2.0
) -> dict[str, VifRow]:
    """(host rx bytes, host tx bytes) of vnet0 (domain a) and vnet1 (b) at t=10 and t=10+seconds."""

    def links(a: tuple[int, int], b: tuple[int, int]) -> list[dict[str, Any]]:
        return [
            with_stats(tap("vnet0", master="br0"), rx=(a[0], a[0] // 100, 0, 0), tx=(a[1], a[1] // 100, 0, 1)),
            with_stats(tap("vnet1", master="br0"), rx=(b[0], b[0] // 100, 2, 0), tx=(b[1], b[1] // 100, 0, 0)),
        ]

    rows = sample_rows(bindings(links(a0, b0)), 10.0, bindings(links(a1, b1)), 10.0 + seconds)
    return {r.binding.vif.domain: r for r in rows}


def test_rates_are_counter_deltas_over_the_dump_interval_in_the_guests_view() -> None:
    rows = two_samples(a0=(0, 0), a1=(1000, 250_000), b0=(500, 500), b1=(500, 500))
    a = rows["a"].rates
    assert a is not None
    # host tx (to the guest) grew 250,000 B in 2 s: the guest receives 1 Mb/s.
    assert a.rx_bps == pytest.approx(1_000_000)
    assert a.tx_bps == pytest.approx(4000)
    assert (a.rx_pps, a.tx_pps) == (pytest.approx(1250), pytest.approx(5))
    b = rows["b"].rates
    assert b is not None and (b.rx_bps, b.tx_bps, b.drops_ps, b.errors_ps) == (0, 0, 0, 0)


def test_counter_going_backwards_gives_no_rate() -> None:
    rows = two_samples(a0=(5000, 5000), a1=(10, 10), b0=(0, 0), b1=(100, 100))
    assert rows["a"].rates is None, "a recreated tap restarts its counters: no negative rate"
    assert rows["a"].counters is not None
    assert rows["b"].rates is not None


def test_new_target_is_a_new_link_not_a_rate() -> None:
    before = bindings([with_stats(tap("vnet0", master="br0"), rx=(0, 0, 0, 0), tx=(0, 0, 0, 0))])
    moved = bind(
        snapshot(
            [vif("a", 0, "bridge", "vnet7", source="br0"), VIFS[1]],
            [bridge("br0"), with_stats(tap("vnet7", master="br0"), rx=(9, 1, 0, 0), tx=(9, 1, 0, 0))],
        )
    )
    rows = {r.binding.vif.domain: r for r in sample_rows(before, 1.0, moved, 2.0)}
    assert rows["a"].rates is None and rows["a"].counters is not None
    assert rows["b"].counters is None and rows["b"].binding.status.value == "missing"


def test_sorting() -> None:
    rows = two_samples(a0=(0, 0), a1=(0, 100), b0=(0, 0), b1=(0, 900))
    assert [r.binding.vif.domain for r in sort_rows(list(rows.values()), "rx")] == ["b", "a"]
    assert [r.binding.vif.domain for r in sort_rows(list(rows.values()), "rx", reverse=True)] == ["a", "b"]
    assert [r.binding.vif.domain for r in sort_rows(list(rows.values()), "domain")] == ["a", "b"]
    assert [r.binding.vif.domain for r in sort_rows(list(rows.values()), "errors")] == ["b", "a"]
    assert [r.binding.vif.domain for r in sort_rows(list(rows.values()), "drops")] == ["a", "b"]
    assert set(SORTS) == {"rx", "tx", "rxpps", "txpps", "drops", "errors", "domain", "status"}


def test_row_dict() -> None:
    doc = row_dict(two_samples(a0=(0, 0), a1=(0, 1000), b0=(0, 0), b1=(0, 0))["a"])
    assert doc["domain"] == "a" and doc["target"] == "vnet0" and doc["status"] == "bound"
    assert doc["rx_bps"] == 4000.0 and doc["rx_bytes"] == 1000 and doc["tx_dropped"] == 0
    assert doc["rx_dropped"] == 1  # host tx_dropped: dropped on the way to the guest


@pytest.mark.parametrize(
    ("bits", "text"),
    [(None, "-"), (0, "0 b/s"), (999, "999 b/s"), (1000, "1 kb/s"), (12_345, "12.3 kb/s"), (1.05e9, "1.05 Gb/s")],
)
def test_human_bits(bits: float | None, text: str) -> None:
    assert human_bits(bits) == text
