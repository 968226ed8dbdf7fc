"""``vifscope qos set --backend tc`` on real links with real traffic: two namespaces joined by
veth pairs (vifscope.lab.qoslink), the ``A`` end of each playing a tap, declared as a running
domain's interface in a libvirt test-driver node file. vifscope runs inside ``A``; iperf3 measures
what the guest end receives and sends. Bounds are generous (the ±10 % figures are
bench/qos_rates.py's, in BENCHMARKS.md): a test asserts the cap bites and the neighbour is free.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vifscope.lab.qoslink import QosLink
from vifscope.sources.kernel.kconfig import read_shaping

pytestmark = pytest.mark.integration

PREFIX = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-r-") + "q"
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.90")
RATE_KBPS = 2500  # libvirt's kB/s: 20 Mbit/s
CAP = RATE_KBPS * 8000


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[QosLink]:
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    if shutil.which("iperf3") is None:
        pytest.fail("iperf3 is missing: scripts/setup.sh --test installs it")
    with QosLink(PREFIX, NET, 2, tmp_path) as made:
        yield made


def tc(lab: QosLink, *args: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", lab.ns_a, "tc", *args], capture_output=True, text=True, check=True
    ).stdout


def qos_set(
    lab: QosLink, uri: str, tmp_path: Path, domain: str, mac: str, *args: str
) -> subprocess.CompletedProcess[str]:
    audit = str(tmp_path / "audit.jsonl")
    return lab.vifscope(uri, "qos", "set", domain, "--mac", mac, *args, "--audit-log", audit, "--json")


def test_tc_backend_caps_both_directions_and_leaves_the_neighbour_alone(lab: QosLink, tmp_path: Path) -> None:
    uri = lab.write_node()
    shaped, neighbour = lab.pairs
    rate = f"{RATE_KBPS}"
    done = qos_set(
        lab, uri, tmp_path, shaped.domain, shaped.mac, "--backend", "tc", "--inbound", rate, "--outbound", rate
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["status"], doc["verdict"]) == ("enforced", "enforced")
    assert doc["outbound"]["enforced"]["mechanism"] == "ifb-htb"
    for inbound in (True, False):
        got = lab.iperf(shaped, inbound=inbound, seconds=3)
        assert 0.5 * CAP < got < 1.3 * CAP, (inbound, got)
        free = lab.iperf(neighbour, inbound=inbound, seconds=2)
        assert free > 3 * CAP, (inbound, free)
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(a["actor"], a["phase"], a["result"]) for a in audit] == [
        ("qos", "apply", "ok"),
        ("qos", "verify", "verified"),
    ]


def test_show_reads_the_metadata_and_clear_removes_only_what_vifscope_made(lab: QosLink, tmp_path: Path) -> None:
    uri = lab.write_node()
    ours, other = lab.pairs
    done = qos_set(
        lab, uri, tmp_path, ours.domain, ours.mac, "--backend", "tc", "--inbound", "1000", "--outbound", "500"
    )
    assert done.returncode == 0, done.stderr
    uri = lab.remember(json.loads(done.stdout))
    tc(
        lab,
        "qdisc",
        "add",
        "dev",
        other.tap,
        "root",
        "handle",
        "5:",
        "tbf",
        "rate",
        "1mbit",
        "burst",
        "10kb",
        "latency",
        "50ms",
    )

    shown = lab.vifscope(uri, "qos", "--json")
    vifs = {v["domain"]: v for v in json.loads(shown.stdout)["vifs"]}
    assert vifs[ours.domain]["read_from"] == "vifscope-metadata"
    assert vifs[ours.domain]["verdict"] == "enforced"
    assert vifs[ours.domain]["outbound"]["declared"]["average"] == 500
    assert vifs[other.domain]["verdict"] == "undeclared"  # the tbf: someone else's

    scrape = lab.vifscope(uri, "exporter", "--once", "--no-checks", "--audit-log", str(tmp_path / "none.jsonl"))
    labels = f'domain="{ours.domain}",mac="{ours.mac}",target="{ours.tap}",direction="outbound"'
    assert f"vifscope_vif_qos_declared_bytes_per_second{{{labels}}} 500000.0" in scrape.stdout, scrape.stderr
    assert f"vifscope_vif_qos_enforced_bytes_per_second{{{labels}}} 500000.0" in scrape.stdout
    assert f'vifscope_vif_qos_verdict{{{labels},verdict="enforced"}} 1.0' in scrape.stdout
    assert (
        f'domain="{other.domain}",mac="{other.mac}",target="{other.tap}",direction="inbound",verdict="undeclared"}} 1.0'
        in scrape.stdout
    )

    cleared = qos_set(lab, uri, tmp_path, ours.domain, ours.mac, "--backend", "tc", "--clear")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["status"] == "cleared"
    qdiscs = tc(lab, "qdisc", "show")
    assert f"dev {ours.tap} root" not in qdiscs.replace("noqueue 0: dev", "")
    assert "ingress" not in qdiscs and "vsq-" not in qdiscs
    assert f"tbf 5: dev {other.tap} root" in qdiscs


def test_tc_backend_refuses_a_qdisc_it_did_not_create(lab: QosLink, tmp_path: Path) -> None:
    uri = lab.write_node()
    vif = lab.pairs[0]
    tc(lab, "qdisc", "add", "dev", vif.tap, "handle", "ffff:", "ingress")
    refused = qos_set(lab, uri, tmp_path, vif.domain, vif.mac, "--backend", "tc", "--outbound", "100")
    assert refused.returncode == 1
    doc = json.loads(refused.stdout)
    assert doc["status"] == "refused" and "did not create" in doc["error"]
    assert "ingress ffff:" in tc(lab, "qdisc", "show", "dev", vif.tap)
    assert not (tmp_path / "audit.jsonl").exists()  # nothing was changed, nothing logged


def test_libvirt_backend_refuses_up_front_where_the_kernel_cannot_enforce(lab: QosLink, tmp_path: Path) -> None:
    shaping = read_shaping()
    if shaping is None or shaping.sfq:
        pytest.skip("this kernel has sch_sfq: libvirt's backend can enforce inbound here")
    uri = lab.write_node()
    vif = lab.pairs[0]
    refused = qos_set(lab, uri, tmp_path, vif.domain, vif.mac, "--inbound", "1000")
    assert refused.returncode == 1
    doc = json.loads(refused.stdout)
    assert doc["status"] == "refused" and "sch_sfq" in doc["error"] and "--backend tc" in doc["hint"]
    assert "htb" not in tc(lab, "qdisc", "show", "dev", vif.tap)


@contextmanager
def changes_the_class_once(lab: QosLink, tap: str, rate: str) -> Iterator[None]:
    """Another admin, for real: ``tc monitor`` in ``A``; the first time class 1:1 appears on
    ``tap`` with another rate, it is changed to ``rate`` -- while vifscope is between its apply
    and its fresh read (the ``virsh metadata`` call alone takes tens of milliseconds)."""
    mon = subprocess.Popen(["ip", "netns", "exec", lab.ns_a, "tc", "monitor"], stdout=subprocess.PIPE, text=True)

    def watch() -> None:
        assert mon.stdout is not None
        for line in mon.stdout:
            if line.startswith(f"class htb 1:1 dev {tap} ") and f"rate {rate} " not in line:
                tc(lab, "class", "change", "dev", tap, "parent", "1:", "classid", "1:1", "htb", "rate", rate)
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    time.sleep(0.3)  # tc monitor subscribes
    try:
        yield
    finally:
        mon.kill()
        mon.wait()
        thread.join(timeout=5)


def test_a_class_changed_between_apply_and_verify_is_rolled_back_to_the_previous_policy(
    lab: QosLink, tmp_path: Path
) -> None:
    uri = lab.write_node()
    vif = lab.pairs[0]
    first = qos_set(lab, uri, tmp_path, vif.domain, vif.mac, "--backend", "tc", "--inbound", "1000")
    assert first.returncode == 0, first.stderr
    uri = lab.remember(json.loads(first.stdout))
    with changes_the_class_once(lab, vif.tap, "24Mbit"):
        second = qos_set(lab, uri, tmp_path, vif.domain, vif.mac, "--backend", "tc", "--inbound", "2500")
    assert second.returncode == 1
    doc = json.loads(second.stdout)
    assert doc["status"] == "rolled-back" and "drift" in doc["error"]
    assert doc["inbound"]["enforced"]["average"] == 1000  # the rollback's own verification
    assert "rate 8Mbit" in tc(lab, "class", "show", "dev", vif.tap)  # 1000 kB/s again, for real
    phases = [(a["phase"], a["result"]) for a in map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines())]
    assert phases[-3:] == [("apply", "ok"), ("verify", "not-verified"), ("rollback", "rolled-back")]


def test_reapply_rebuilds_a_policy_on_a_recreated_tap_and_removes_the_old_ifb(lab: QosLink, tmp_path: Path) -> None:
    uri = lab.write_node()
    vif, other = lab.pairs
    done = qos_set(lab, uri, tmp_path, vif.domain, vif.mac, "--backend", "tc", "--inbound", "1000", "--outbound", "500")
    assert done.returncode == 0, done.stderr
    uri = lab.remember(json.loads(done.stdout))
    old_ifb = next(w for w in tc(lab, "qdisc", "show").split() if w.startswith("vsq-"))
    lab.recreate(vif)

    def verdicts() -> dict[str, str]:
        shown = lab.vifscope(uri, "qos", "--json")
        return {v["domain"]: v["verdict"] for v in json.loads(shown.stdout)["vifs"]}

    assert verdicts() == {vif.domain: "missing", other.domain: "none"}
    audit = str(tmp_path / "audit.jsonl")
    again = lab.vifscope(uri, "qos", "reapply", "--audit-log", audit, "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    (one,) = json.loads(again.stdout)["reapplied"]
    assert (one["domain"], one["was"], one["status"]) == (vif.domain, "missing", "enforced")
    assert f"ip link del dev {old_ifb}" in one["commands"]
    assert verdicts()[vif.domain] == "enforced"
    got = lab.iperf(vif, inbound=False, seconds=2)
    assert 0.5 * 500 * 8000 < got < 1.3 * 500 * 8000
