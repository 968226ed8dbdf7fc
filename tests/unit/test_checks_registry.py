"""The check registry: stable ids, every id issue 3 asks for, explanations, categories."""

from __future__ import annotations

import inspect
from pathlib import Path

from tests.golden_checks.loader import expected_findings
from tests.unit.ipjson import TAKEN_AT
from vifscope.checks import ALL_CHECKS, CATEGORIES, CHECKS_BY_ID, DoctorConfig, evaluate, run_checks
from vifscope.model import HostSnapshot

ISSUE_3_IDS = (
    "vif.missing",
    "vif.detached",
    "vif.misbound",
    "vif.tap_down",
    "vif.link_state_down",
    "bridge.missing",
    "bridge.down",
    "bridge.no_uplink",
    "bridge.uplink_down",
    "bridge.stp_forward_delay",
    "vif.mtu_mismatch",
    "mac.duplicate",
    "mac.host_conflict",
    "mac.invalid",
    "ovs.attached_mac_mismatch",
    "ip.duplicate",
    "ip.no_lease",
    "network.inactive",
    "network.bridge_missing",
    "network.dhcp_not_running",
    "network.nat_rules_missing",
    "host.ip_forward_off",
    "host.br_netfilter_drop",
    "host.tun_missing",
    "host.vhost_net_missing",
    "host.kvm_unusable",
    "ovs.not_running",
    "ovs.port_error",
    "direct.lower_down",
    "direct.host_unreachable",
    "sec.no_spoof_filter",
    "sec.port_not_isolated",
    "sec.promisc",
    "sec.trust_guest_rx_filters",
    "sec.stp_off_multi_uplink",
    "perf.emulated_model",
    "perf.no_vhost",
    "perf.multiqueue",
    "perf.txqueuelen_low",
    "perf.tap_qdisc",
    "sysctl.somaxconn_low",
    "sysctl.port_range_narrow",
    "sysctl.conntrack_max_low",
    "conntrack.near_full",
)
GOLDEN = Path(__file__).resolve().parents[1] / "golden_checks" / "cases"


def test_ids_are_unique_and_cover_the_issue() -> None:
    ids = [c.id for c in ALL_CHECKS]
    assert len(ids) == len(set(ids)) == len(CHECKS_BY_ID)
    assert set(ISSUE_3_IDS) <= set(ids), sorted(set(ISSUE_3_IDS) - set(ids))


def test_every_check_is_explained_and_categorised() -> None:
    for c in ALL_CHECKS:
        assert c.category in CATEGORIES, c.id
        assert c.title and c.explain.what and c.explain.why and c.explain.fix and c.explain.false_positives, c.id
        assert c.id == c.id.lower() and "." in c.id


def test_every_check_fires_in_some_golden_case() -> None:
    fired = {e["check"] for p in GOLDEN.glob("*/expected.json") for e in expected_findings(p.parent)}
    assert {c.id for c in ALL_CHECKS} <= fired, sorted({c.id for c in ALL_CHECKS} - fired)


def test_run_checks_keeps_its_public_shape() -> None:
    params = list(inspect.signature(run_checks).parameters)
    assert params == ["snapshot", "bindings", "config"]
    empty = HostSnapshot(host="h", uri="test:///default", taken_at=TAKEN_AT)
    assert run_checks(empty, ()) == ()
    assert run_checks(empty, (), DoctorConfig()) == ()


def test_categories_filter_and_config_skip() -> None:
    empty = HostSnapshot(host="h", uri="test:///default", taken_at=TAKEN_AT)
    run = evaluate(empty, (), DoctorConfig(skip=("perf.no_vhost",)), categories=("performance",))
    assert ("perf.no_vhost", "skipped in the config (doctor.skip)") in run.skipped
    skipped = {cid for cid, _ in run.skipped}
    assert all(CHECKS_BY_ID[cid].category == "performance" for cid in skipped)
    assert "sysctl.somaxconn_low" in skipped  # no deep facts in this snapshot
