"""model/mac.py: MAC arithmetic, parsing, validation, overlap, quarantine timing (the clock is a parameter)."""

from __future__ import annotations

import pytest

from vifscope.model.mac import (
    MacError,
    MacPool,
    MacRange,
    MacRecord,
    MacState,
    advice,
    containing,
    format_mac,
    in_quarantine,
    normalize_mac,
    overlapping,
    parse_mac,
    parse_range,
    prefix_range,
    reusable_at,
    usage,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("52:54:00:00:00:00", 0x525400000000),
        ("52:54:00:AB:cd:EF", 0x525400ABCDEF),
        ("52-54-00-01-02-03", 0x525400010203),
        ("2:0:0:0:0:1", 0x020000000001),
        ("ff:ff:ff:ff:ff:ff", (1 << 48) - 1),
        (" 00:00:00:00:00:00 ", 0),
    ],
)
def test_parse_and_format_round_trip(text: str, value: int) -> None:
    assert parse_mac(text) == value
    assert parse_mac(format_mac(value)) == value
    assert format_mac(value) == format_mac(value).lower() and len(format_mac(value)) == 17


@pytest.mark.parametrize(
    "bad", ["", "52:54:00:00:00", "52:54:00:00:00:00:00", "52:54:00:00:00:zz", "525400000000", "52:54:00:0000:00"]
)
def test_malformed_macs_are_refused(bad: str) -> None:
    with pytest.raises(MacError):
        parse_mac(bad)


def test_format_refuses_values_outside_48_bits() -> None:
    with pytest.raises(MacError):
        format_mac(1 << 48)
    with pytest.raises(MacError):
        format_mac(-1)
    assert normalize_mac("52:54:0:a:B:c") == "52:54:00:0a:0b:0c"


def test_range_and_prefix() -> None:
    r = parse_range("52:54:00:10:00:00-52:54:00:1f:ff:ff")
    assert (r.start, r.end, r.size) == (0x525400100000, 0x5254001FFFFF, 0x100000)
    p = prefix_range("52:54:00:3a")
    assert (p.text(), p.size) == ("52:54:00:3a:00:00-52:54:00:3a:ff:ff", 65536)
    assert prefix_range("52:54:00:3a:01:").size == 256
    assert 0x525400100000 in r and 0x525400200000 not in r and "52:54:00:10:00:00" not in r


@pytest.mark.parametrize(
    "bad",
    [
        "52:54:00:00:00:02-52:54:00:00:00:01",  # start after end
        "01:00:00:00:00:00-01:00:00:00:00:ff",  # multicast
        "52:ff:ff:ff:ff:f0-53:00:00:00:00:10",  # crosses into an odd first octet
        "52:54:00:00:00:00",  # no end
        "52:54:00:00:00:00-52:54:00:00:00:01-52:54:00:00:00:02",
    ],
)
def test_refused_ranges(bad: str) -> None:
    with pytest.raises(MacError):
        parse_range(bad)


@pytest.mark.parametrize("bad", ["03:54", "52:54:00:3a:00:00", "", "52:zz", "52:54:00:3a:0100"])
def test_refused_prefixes(bad: str) -> None:
    with pytest.raises(MacError):
        prefix_range(bad)


def test_single_mac_range_is_valid_with_advice() -> None:
    r = parse_range("52:54:00:00:00:05-52:54:00:00:00:05")
    assert r.size == 1
    assert any("only 1" in note for note in advice(r))


def test_locally_administered_advice() -> None:
    assert advice(prefix_range("52:54:00")) == ()  # 0x52: local bit set
    assert advice(prefix_range("02:00:00")) == ()
    notes = advice(prefix_range("00:16:3e"))  # Xen's vendor OUI: universally administered
    assert len(notes) == 1 and "locally administered" in notes[0]


def test_overlap_is_symmetric_and_touching_ranges_do_not_overlap() -> None:
    a = MacRange(100, 200)
    assert a.overlaps(MacRange(200, 300)) and MacRange(200, 300).overlaps(a)
    assert a.overlaps(MacRange(0, 100)) and a.overlaps(MacRange(150, 160)) and MacRange(150, 160).overlaps(a)
    assert not a.overlaps(MacRange(201, 300)) and not MacRange(0, 99).overlaps(a)
    pools = (MacPool("x", MacRange(0, 99)), MacPool("y", MacRange(150, 160)), MacPool("z", MacRange(300, 400)))
    assert [p.name for p in overlapping(a, pools)] == ["y"]
    assert containing(155, pools) == pools[1] and containing(120, pools) is None


def test_quarantine_timing_with_an_injected_clock() -> None:
    released = 1_000.0
    until = reusable_at(released, 3600)
    rec = MacRecord(0x525400000001, MacState.QUARANTINED, "p", changed_at=released, reusable_at=until)
    assert in_quarantine(rec, released)
    assert in_quarantine(rec, until - 0.001)
    assert not in_quarantine(rec, until)  # reusable at exactly reusable_at
    assert reusable_at(released, -5) == released
    allocated = MacRecord(0x525400000002, MacState.ALLOCATED, "p")
    assert not in_quarantine(allocated, 0)


def test_usage_counts_by_range_not_by_pool_name() -> None:
    pool = MacPool("p", MacRange(0x10, 0x1F), 60)
    recs = (
        MacRecord(0x10, MacState.ALLOCATED, "p"),
        MacRecord(0x11, MacState.IMPORTED, None),  # imported before the pool existed: still used
        MacRecord(0x12, MacState.QUARANTINED, "p", reusable_at=50.0),
        MacRecord(0x13, MacState.QUARANTINED, "p", reusable_at=10.0),  # expired: free
        MacRecord(0x20, MacState.ALLOCATED, "q"),  # outside
    )
    u = usage(pool, recs, now=20.0)
    assert (u.used, u.quarantined, u.free) == (2, 1, 13)
