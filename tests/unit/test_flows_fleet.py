"""Peers named across a fleet (``flows --inventory``): the pure naming of bind.peers fed with the
vifs other hosts' agents report (fleet.peers over the agents' own documents, tests.unit.fleetdocs).

A peer on another host is ``host/domain`` by its address, else by its MAC; this host's vifs
win; a MAC (or address) two fleet hosts both claim names nobody and lists both."""

from __future__ import annotations

from typing import Any

from tests.unit.fleetdocs import answer, down, guest
from tests.unit.test_flows import IN, MAC_A, MAC_B, OUT, _snapshot, rec
from vifscope.bind.flows import vif_flows
from vifscope.bind.join import bind
from vifscope.bind.peers import PeerNames
from vifscope.fleet.peers import peer_vifs
from vifscope.model.fleetvif import FleetPeerVif
from vifscope.model.flows import FlowCounters, FlowGrouping, FlowSample, PeerName
from vifscope.report.flows import flows_report, peer_text

MAC_R1, MAC_R2, MAC_DUP = "52:54:00:00:01:01", "52:54:00:00:02:01", "52:54:00:00:0d:0d"


def _fleet() -> tuple[FleetPeerVif, ...]:
    """kvm-b: db1 (10.9.0.5) and dup-b; kvm-c: cache1 and dup-c, which has dup-b's MAC; kvm-d down."""
    b = answer("kvm-b", [guest("db1", MAC_R1), guest("dup-b", MAC_DUP)], addresses={MAC_R1: ["10.9.0.5"]})
    c = answer("kvm-c", [guest("cache1", MAC_R2), guest("dup-c", MAC_DUP)])
    vifs, errors = peer_vifs([b, c, down("kvm-d")])
    assert [(e.source, e.error) for e in errors] == [("fleet", "kvm-d: cannot connect: Connection refused")]
    return vifs


def _talkers(*records: Any) -> dict[str, Any]:
    """vif a's talkers (by peer key) as ``flows --json`` has them, the fleet above given."""
    sample = FlowSample(tuple(records), FlowCounters(), 1.0, 0.1, "built")
    vifs = vif_flows(bind(_snapshot()), sample.records, FlowGrouping.PEER, 10, _fleet())
    doc = flows_report(vifs, sample, "peer", 10, ())
    return {t["key"]: t for t in doc["vifs"][0]["talkers"]}


def test_a_peer_on_another_host_is_named_by_its_address() -> None:
    # routed: the frame's MAC is the router's; the address says whose vif it is
    t = _talkers(rec(OUT, "10.0.0.1", "10.9.0.5", dmac="52:54:00:00:00:99"))["10.9.0.5"]
    assert t["peer"] == "kvm-b/db1"
    assert t["peer_vif"] == {"host": "kvm-b", "domain": "db1", "mac": MAC_R1}
    assert t["peer_candidates"] == []


def test_a_peer_on_another_host_is_named_by_its_mac() -> None:
    t = _talkers(rec(IN, "10.7.7.7", "10.0.0.1", smac=MAC_A, dmac=MAC_R2.upper()))["10.7.7.7"]
    assert (t["peer"], t["peer_vif"]) == ("kvm-c/cache1", {"host": "kvm-c", "domain": "cache1", "mac": MAC_R2})


def test_a_mac_on_two_hosts_is_ambiguous_not_guessed() -> None:
    t = _talkers(rec(OUT, "10.0.0.1", "10.8.8.8", dmac=MAC_DUP))["10.8.8.8"]
    assert (t["peer"], t["peer_vif"]) == (None, None)
    assert t["peer_candidates"] == [
        {"host": "kvm-b", "domain": "dup-b", "mac": MAC_DUP},
        {"host": "kvm-c", "domain": "dup-c", "mac": MAC_DUP},
    ]
    assert peer_text(t) == "ambiguous: kvm-b/dup-b | kvm-c/dup-c"


def test_this_hosts_vifs_win_and_keep_their_plain_name() -> None:
    # b is a vif on this host; kvm-x claims b's MAC too (a stale definition elsewhere)
    names = PeerNames.of(bind(_snapshot()), [FleetPeerVif("kvm-x", "b-copy", MAC_B, ("10.0.0.2",))])
    assert names.lookup(None, MAC_B) == (PeerName("b", MAC_B),)
    t = _talkers(rec(OUT, "10.0.0.1", "10.0.0.2", dmac=MAC_B))["10.0.0.2"]
    assert (t["peer"], t["peer_vif"]) == ("b", {"host": None, "domain": "b", "mac": MAC_B})


def test_the_running_claimant_wins_over_a_shut_off_one() -> None:
    fleet = [FleetPeerVif("kvm-b", "web", MAC_DUP, (), True), FleetPeerVif("kvm-c", "web", MAC_DUP, (), False)]
    assert PeerNames.of((), fleet).lookup("10.1.1.1", MAC_DUP) == (PeerName("web", MAC_DUP, "kvm-b"),)
    both_off = [FleetPeerVif(v.host, v.domain, v.mac, (), False) for v in fleet]
    assert len(PeerNames.of((), both_off).lookup(None, MAC_DUP)) == 2  # none runs: still ambiguous


def test_an_unknown_peer_and_a_fleet_that_did_not_answer_name_nothing() -> None:
    t = _talkers(rec(OUT, "10.0.0.1", "192.0.2.1", dmac="52:54:00:00:00:77"))["192.0.2.1"]
    assert (t["peer"], t["peer_vif"], t["peer_candidates"]) == (None, None, [])
    assert peer_vifs([down("kvm-d")])[0] == ()
