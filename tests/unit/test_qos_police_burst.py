"""qos.outbound_police_small_burst: the two floors (64 KiB GSO packet, 10 ms at the cap), the
suggested burst, and the fix's argv on the golden case (kernel filter and declared values)."""

from __future__ import annotations

import shlex

from tests.golden_checks.loader import CASES_DIR, load_case
from vifscope.bind.join import bind
from vifscope.checks import evaluate
from vifscope.checks.qospolice import GSO_MAX, Bucket, _problems, min_burst, suggested_burst_kib

CHECK = "qos.outbound_police_small_burst"


def test_floor_is_one_gso_packet_at_low_rates_and_10ms_at_high_rates() -> None:
    assert min_burst(500_000) == GSO_MAX  # 4 Mbit/s: 10 ms is 5 kB, the GSO packet dominates
    assert min_burst(125_000_000) == 1_250_000  # 1 Gbit/s: 10 ms is 1.25 MB


def test_a_bucket_at_the_floor_passes_and_one_byte_less_does_not() -> None:
    assert _problems(Bucket(500_000, GSO_MAX, GSO_MAX, "kernel")) == []
    assert _problems(Bucket(500_000, GSO_MAX - 1, GSO_MAX, "kernel")) == ["burst 64 KiB < 64 KiB"]
    assert _problems(Bucket(125_000_000, 1_000_000, None, "declared")) == ["burst 977 KiB < 1221 KiB"]
    assert _problems(Bucket(500_000, 1 << 20, 2048, "kernel")) == ["mtu 2048 B < 65536 B"]


def test_libvirt_default_burst_is_fine_above_64_kBps() -> None:
    # libvirt's burst defaults to the average (kB/s read as KiB): ~1 s of traffic
    for avg in (64, 500, 125_000, 4_000_000):
        assert not _problems(Bucket(avg * 1000, avg * 1024, None, "declared"))
    assert suggested_burst_kib(32) == 64
    assert suggested_burst_kib(500) == 500


def test_findings_and_fixes_on_the_golden_case() -> None:
    case = load_case(CASES_DIR / "qos-police-small-burst")
    run = evaluate(case.snap, bind(case.snap))
    fixes = {f.domain: [shlex.join(c.argv) for c in f.fix.commands] for f in run.findings if f.check == CHECK and f.fix}
    uri = case.snap.uri
    assert fixes == {
        "vs-d-web1": [f"virsh -c {uri} domiftune --live --config --outbound 500,,500 -- vs-d-web1 52:54:00:51:01:00"],
        "vs-d-off": [f"virsh -c {uri} domiftune --config --outbound 32,,64 -- vs-d-off 52:54:00:51:07:00"],
    }


def test_drift_case_with_a_large_bucket_is_not_flagged() -> None:
    case = load_case(CASES_DIR / "qos-drift")
    run = evaluate(case.snap, bind(case.snap))
    assert not [f for f in run.findings if f.check == CHECK]
