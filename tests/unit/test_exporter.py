"""Exporter metrics from snapshots built with the real parsers (``ip -j -s`` JSON, libvirt XML).

The text exposition is read back with prometheus_client's own parser and linted by
Prometheus' ``promtool check metrics``: a label value that breaks the format (the known
SR-IOV empty-label exporter bug) fails here, for every interface type of libvirt's corpus.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.ipjson import bridge, macvtap, phys, snapshot, tap
from vifscope.bind.join import bind
from vifscope.exporter.checks import doctor_checks
from vifscope.exporter.collector import VIF_LABELS, Exporter, Scrape, families, render
from vifscope.exporter.exposition import to_client
from vifscope.model import DeclaredVif, DomainState, Finding, HostSnapshot, Severity, SourceError, VifStatus
from vifscope.sources.audit_log import ActionCount
from vifscope.sources.libvirt.domxml import parse_domain_xml

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "domains"


def with_stats(raw: dict[str, Any], rx: tuple[int, int, int, int], tx: tuple[int, int, int, int]) -> dict[str, Any]:
    """Add IFLA_STATS64 the way ``ip -j -s`` prints it: (bytes, packets, errors, dropped)."""
    keys = ("bytes", "packets", "errors", "dropped")
    raw["stats64"] = {"rx": dict(zip(keys, rx, strict=True)), "tx": dict(zip(keys, tx, strict=True))}
    return raw


def vif(domain: str, index: int, type_: str, target: str | None, **kw: Any) -> DeclaredVif:
    state = kw.pop("state", DomainState.RUNNING)
    uuid = kw.pop("uuid", f"00000000-0000-0000-0000-{abs(hash(domain)) % 10**12:012d}")
    return DeclaredVif(
        domain, uuid, state, index, type_, kw.pop("mac", f"52:54:00:00:00:{index:02x}"), target=target, **kw
    )


def parse(text: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    """sample name -> [(labels, value)], through prometheus_client's exposition parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def promtool_lint(text: bytes) -> None:
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


def scrape_of(snap: HostSnapshot, **kw: Any) -> Scrape:
    return Scrape(snapshot=snap, bindings=bind(snap), **kw)


def lab_like() -> HostSnapshot:
    """A bound tap, a detached tap, a macvtap, a shut-off domain and a hostdev vif."""
    vifs = [
        vif("web1", 0, "bridge", "vnet0", source="br0"),
        vif("broken", 0, "bridge", "vnet1", source="br0"),
        vif("mac1", 0, "direct", "macvtap0", source="eth1", source_mode="bridge"),
        vif("off", 0, "bridge", "vnet9", source="br0", state=DomainState.SHUTOFF),
        vif("sriov", 0, "hostdev", None, mac=None),
    ]
    links = [
        bridge("br0"),
        phys("eth1"),
        with_stats(tap("vnet0", master="br0"), rx=(1000, 10, 1, 2), tx=(5000, 50, 3, 4)),
        with_stats(tap("vnet1"), rx=(0, 0, 0, 0), tx=(0, 0, 0, 0)),
        with_stats(macvtap("macvtap0", "eth1", "bridge"), rx=(700, 7, 0, 0), tx=(300, 3, 0, 0)),
    ]
    return snapshot(vifs, links)


def by_domain(samples: list[tuple[dict[str, str], float]]) -> dict[str, float]:
    return {labels["domain"]: value for labels, value in samples}


def test_bound_and_one_hot_status_per_vif() -> None:
    m = parse(render(scrape_of(lab_like())))
    assert by_domain(m["vifscope_vif_bound"]) == {"web1": 1, "broken": 0, "mac1": 1, "off": 0, "sriov": 0}
    status = m["vifscope_vif_status"]
    assert len(status) == 5 * len(VifStatus)
    ones = {labels["domain"]: labels["status"] for labels, value in status if value == 1}
    assert ones == {"web1": "bound", "broken": "detached", "mac1": "bound", "off": "inactive", "sriov": "unverified"}
    assert sum(value for _, value in status) == 5
    summary = {labels["status"]: value for labels, value in m["vifscope_vifs"]}
    assert summary == {
        "bound": 2,
        "detached": 1,
        "inactive": 1,
        "unverified": 1,
        "missing": 0,
        "misbound": 0,
        "down": 0,
    }


def test_labels_are_complete_strings_even_without_target_mac_or_bridge() -> None:
    m = parse(render(scrape_of(lab_like())))
    labels = {lab["domain"]: lab for lab, _ in m["vifscope_vif_bound"]}
    assert set(labels["web1"]) == set(VIF_LABELS)
    assert labels["web1"] | {"domain_uuid": ""} == {
        "domain": "web1",
        "domain_uuid": "",
        "index": "0",
        "mac": "52:54:00:00:00:00",
        "target": "vnet0",
        "type": "bridge",
        "bridge": "br0",
    }
    assert (labels["sriov"]["target"], labels["sriov"]["mac"], labels["sriov"]["bridge"]) == ("", "", "")
    assert labels["off"]["target"] == "", "a shut-off domain's stale <target> must not label a series"
    assert labels["mac1"]["bridge"] == ""


def test_counters_are_the_guests_view() -> None:
    m = parse(render(scrape_of(lab_like())))
    # tap vnet0: the host received 1000 bytes (from the guest) and sent 5000 (to the guest).
    assert by_domain(m["vifscope_vif_rx_bytes_total"])["web1"] == 5000
    assert by_domain(m["vifscope_vif_tx_bytes_total"])["web1"] == 1000
    assert by_domain(m["vifscope_vif_rx_packets_total"])["web1"] == 50
    assert by_domain(m["vifscope_vif_rx_errors_total"])["web1"] == 3
    assert by_domain(m["vifscope_vif_tx_errors_total"])["web1"] == 1
    assert by_domain(m["vifscope_vif_rx_drops_total"])["web1"] == 4
    assert by_domain(m["vifscope_vif_tx_drops_total"])["web1"] == 2
    # macvtap: its netdev stands for the guest; rx is already what the guest received.
    assert by_domain(m["vifscope_vif_rx_bytes_total"])["mac1"] == 700
    # No link, no counter series (shut off, hostdev): absent, not zero.
    assert set(by_domain(m["vifscope_vif_rx_bytes_total"])) == {"web1", "broken", "mac1"}


def test_findings_heals_sources_and_duration() -> None:
    findings = (
        Finding("mac.duplicate", Severity.ERROR, "binding", "dup", domain="a"),
        Finding("mac.duplicate", Severity.ERROR, "binding", "dup", domain="b"),
        Finding("perf.emulated_model", Severity.WARNING, "performance", "e1000"),
    )
    scrape = scrape_of(
        lab_like(),
        findings=findings,
        known_checks=(("conntrack.near_full", Severity.WARNING), ("mac.duplicate", Severity.ERROR)),
        actions=(
            ActionCount("heal", "apply", "ok", 3),
            ActionCount("heal", "apply", "failed", 1),
            ActionCount("heal", "verify", "verified", 3),
            ActionCount("doctor-fix", "apply", "ok", 9),
        ),
        sources=(("libvirt", True), ("netlink", True), ("ovs", False)),
        source_seconds=(("libvirt", 0.02), ("netlink", 0.01)),
        seconds=0.125,
    )
    m = parse(render(scrape))
    found = {(lab["check"], lab["severity"]): v for lab, v in m["vifscope_findings"]}
    assert found == {
        ("mac.duplicate", "error"): 2,
        ("perf.emulated_model", "warning"): 1,
        ("conntrack.near_full", "warning"): 0,
    }
    assert {lab["result"]: v for lab, v in m["vifscope_heals_total"]} == {"ok": 3, "failed": 1}
    actions = {(lab["actor"], lab["phase"], lab["result"]): v for lab, v in m["vifscope_actions_total"]}
    assert actions[("heal", "verify", "verified")] == 3 and actions[("doctor-fix", "apply", "ok")] == 9
    assert {lab["source"]: v for lab, v in m["vifscope_source_up"]} == {"libvirt": 1, "netlink": 1, "ovs": 0}
    assert m["vifscope_scrape_duration_seconds"] == [({}, 0.125)]
    assert {lab["source"]: v for lab, v in m["vifscope_source_duration_seconds"]} == {"libvirt": 0.02, "netlink": 0.01}


def test_exposition_passes_promtool_lint() -> None:
    promtool_lint(render(scrape_of(lab_like(), findings=(Finding("x.y", Severity.INFO, "host", "m"),))))


def test_hostile_label_values_stay_valid() -> None:
    """Quotes, backslashes, newlines and non-ASCII in names must be escaped, not break the scrape."""
    odd = 'we"ird\\na\nme-ü'
    snap = snapshot([vif(odd, 0, "bridge", "vnet0", source='b"r')], [tap("vnet0")])
    text = render(scrape_of(snap))
    promtool_lint(text)
    (labels, value), *_ = parse(text)["vifscope_vif_bound"]
    assert (labels["domain"], labels["bridge"], value) == (odd, 'b"r', 0)


def corpus_snapshot() -> HostSnapshot:
    """Every interface of libvirt's own test XML, running, as one host. Corpus files reuse
    domain names and UUIDs, which no real host can: each file gets its own name and UUID."""
    vifs: list[DeclaredVif] = []
    for n, path in enumerate(sorted(CORPUS.glob("*.xml"))):
        for v in parse_domain_xml(path.read_text(encoding="utf-8"), DomainState.RUNNING):
            vifs.append(dataclasses.replace(v, domain=path.stem, domain_uuid=f"corpus-{n}"))
    targets = sorted({v.target for v in vifs if v.target})
    return snapshot(vifs, [with_stats(tap(t), rx=(1, 1, 0, 0), tx=(2, 2, 0, 0)) for t in targets])


def test_every_corpus_interface_type_exports_valid_series() -> None:
    snap = corpus_snapshot()
    text = render(scrape_of(snap))
    promtool_lint(text)
    m = parse(text)
    assert len(m["vifscope_vif_bound"]) == len(snap.vifs)
    keys = Counter((lab["domain_uuid"], lab["index"]) for lab, _ in m["vifscope_vif_bound"])
    assert max(keys.values()) == 1, "two vifs with the same label set would be dropped by Prometheus"
    types = {lab["type"] for lab, _ in m["vifscope_vif_bound"]}
    assert {"hostdev", "vhostuser", "user", "vdpa", "bridge", "network", "direct", "ethernet"} <= types
    one_hot = Counter((lab["domain_uuid"], lab["index"]) for lab, v in m["vifscope_vif_status"] if v == 1)
    assert set(one_hot.values()) == {1} and len(one_hot) == len(snap.vifs)


def test_failed_libvirt_gives_no_vif_series_but_the_scrape_still_renders() -> None:
    snap = snapshot([], [tap("vnet0")], errors=[SourceError("libvirt", "no answer within 3.0 s", "hint")])
    scrape = scrape_of(snap, sources=(("libvirt", False), ("netlink", True)))
    m = parse(render(scrape))
    assert "vifscope_vif_bound" not in m
    assert {lab["source"]: v for lab, v in m["vifscope_source_up"]} == {"libvirt": 0, "netlink": 1}
    assert {f.name for f in families(scrape)} >= {"vifscope_vif_bound", "vifscope_findings", "vifscope_heals_total"}


@pytest.mark.parametrize("status", list(VifStatus), ids=str)
def test_every_status_value_is_a_label(status: VifStatus) -> None:
    m = parse(render(scrape_of(lab_like())))
    assert any(lab["status"] == status.value for lab, _ in m["vifscope_vif_status"])


def described(text: bytes) -> set[tuple[str, str, str, frozenset[tuple[str, str]], float]]:
    """(family, type, help, labels, value) of every sample: what a scraper sees."""
    return {
        (fam.name, fam.type, fam.documentation, frozenset(s.labels.items()), s.value)
        for fam in text_string_to_metric_families(text.decode())
        for s in fam.samples
    }


class _Static:
    def __init__(self, metrics: list[Any]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Any]:
        return self.metrics


@pytest.mark.parametrize("make", [lab_like, corpus_snapshot], ids=["lab", "corpus"])
def test_own_writer_matches_prometheus_client(make: Any) -> None:
    """exposition() (fast) and prometheus_client's generate_latest of to_client() say the same."""
    scrape = scrape_of(
        make(),
        findings=(Finding("mac.duplicate", Severity.ERROR, "binding", "m"),),
        actions=(ActionCount("heal", "apply", "ok", 2),),
        sources=(("libvirt", True), ("ovs", False)),
        seconds=0.5,
    )
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Static(to_client(families(scrape))))  # type: ignore[arg-type]
    ours, theirs = described(render(scrape)), described(generate_latest(reg))
    assert ours == theirs
    assert len(ours) > 70


def test_exporter_is_a_collector_on_its_own_registry() -> None:
    """Mountable: Exporter.registry() is a private CollectorRegistry that scrapes on collect."""
    exporter = Exporter("test:///default", timeout=5.0, audit_log=None)
    text = generate_latest(exporter.registry())
    names = {fam.name for fam in text_string_to_metric_families(text.decode())}
    assert {"vifscope_vif_bound", "vifscope_vif_status", "vifscope_source_up"} <= names
    assert REGISTRY.get_sample_value("vifscope_scrape_duration_seconds") is None  # not the global one


def test_doctor_checks_feed_findings_and_unevaluated_checks_stay_unknown() -> None:
    """The real checks over a real-shaped snapshot: two running vifs share a MAC."""
    dup = "52:54:00:aa:aa:aa"
    snap = snapshot(
        [
            vif("a", 0, "bridge", "vnet0", source="br0", mac=dup),
            vif("b", 0, "bridge", "vnet1", source="br0", mac=dup),
        ],
        [bridge("br0"), tap("vnet0", master="br0"), tap("vnet1", master="br0")],
    )
    bindings = bind(snap)
    findings, known = doctor_checks()(snap, bindings)
    m = parse(render(Scrape(snapshot=snap, bindings=bindings, findings=findings, known_checks=known)))
    found = {(lab["check"], lab["severity"]): v for lab, v in m["vifscope_findings"]}
    assert found[("mac.duplicate", "error")] == 2
    assert found[("vif.detached", "error")] == 0  # evaluated, nothing found: an explicit 0
    # Without deep facts (sysctls) conntrack.near_full cannot be evaluated: no series, not a 0.
    assert not any(check == "conntrack.near_full" for check, _ in found)
