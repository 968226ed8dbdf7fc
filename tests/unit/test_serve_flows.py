"""``GET /api/v1/vifs/{domain}/{mac}/flows`` without a kernel: the 404s, the documented 503s
(flows off, BPF unavailable, not started yet) and the rolling window's arithmetic (over a
stand-in collector whose map the test writes; the numbers asserted are the route's deltas).
The real program and real traffic: tests/integration/test_flows_serve.py."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from tests.unit.ipjson import bridge, snapshot, tap
from tests.unit.test_topology import vif
from vifscope.exporter.flows import FlowTracker
from vifscope.model import SourceError
from vifscope.model.flows import FlowCounters, FlowDirection, FlowRecord, FlowSample
from vifscope.serve.app import create_app
from vifscope.serve.backend import Backend
from vifscope.serve.flows import ServeFlows, follow_loop
from vifscope.serve.state import Snapshots
from vifscope.sources.flows.collector import FlowCollector
from vifscope.sources.flows.libbpf import BpfUnavailable

MAC_A, MAC_B = "52:54:00:00:00:0a", "52:54:00:00:00:0b"
LINKS = [bridge("br0"), tap("vnet0", master="br0"), tap("vnet1", master="br0")]
SNAP = snapshot(
    [vif("web", "bridge", "br0", "vnet0", mac=MAC_A), vif("db", "bridge", "br0", "vnet1", mac=MAC_B)], LINKS
)
IF_A = next(link.ifindex for link in SNAP.links if link.name == "vnet0")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class MapStandIn:
    """What FlowTracker needs of a FlowCollector: links, sync, read, close; the map is ``records``."""

    def __init__(self, _max_flows: int) -> None:
        self.links: dict[int, tuple[int, int]] = {}
        self.records: list[FlowRecord] = []
        self.refuse: set[int] = set()  # ifindexes whose attach fails
        self.hold: threading.Event | None = None  # set: sync waits for it (a slow TCX attach)

    def sync(self, wanted: set[int], budget: float) -> list[BpfUnavailable]:
        if self.hold is not None:
            self.hold.wait(10)
        self.links = dict.fromkeys(wanted - self.refuse, (0, 0))
        return [BpfUnavailable(f"TCX attach to ifindex {i} failed: EBUSY") for i in sorted(wanted & self.refuse)]

    def read(self, *, prune: bool = False) -> FlowSample:
        if prune:  # as the collector: the flows of taps no longer attached go
            self.records = [r for r in self.records if r.ifindex in self.links]
        return FlowSample(tuple(self.records), FlowCounters(entries=len(self.records)), 1.0, 0.1, "built")

    def close(self) -> None:
        self.links = {}


def ping(nbytes: int, packets: int) -> FlowRecord:
    """web → db, as the kernel's map holds it (cumulative)."""
    return FlowRecord(
        IF_A, FlowDirection.OUT, 0x0800, 1, MAC_A, MAC_B, "10.0.0.1", "10.0.0.2", 8, 0, nbytes, packets, nbytes - 42
    )


def client(flows: ServeFlows | None) -> TestClient:
    snaps = Snapshots(lambda: SNAP)
    return TestClient(create_app(Backend("test:///default", snaps, snaps, flows=flows)))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stand_in() -> Iterator[MapStandIn]:
    yield MapStandIn(0)


def serve_flows(stand_in: MapStandIn, clock: Clock, window: float = 10.0) -> ServeFlows:
    make = cast(Any, lambda _n: stand_in)
    return ServeFlows(FlowTracker(make=make), window, clock)


def test_unknown_domain_or_mac_is_404_flows_or_not(stand_in: MapStandIn, clock: Clock) -> None:
    for flows in (None, serve_flows(stand_in, clock)):
        c = client(flows)
        r = c.get(f"/api/v1/vifs/nosuch/{MAC_A}/flows")
        assert r.status_code == 404 and r.json()["error"] == "no domain 'nosuch' with interfaces"
        r = c.get("/api/v1/vifs/web/52:54:00:00:00:99/flows")
        assert r.status_code == 404 and MAC_A in r.json()["hint"]
        assert c.get("/api/v1/vifs/web/not-a-mac/flows").status_code == 422
        assert c.get(f"/api/v1/vifs/web/{MAC_A}/flows?top=0").status_code == 422


def test_flows_off_is_404_like_metrics_off() -> None:
    c = client(None)
    r = c.get(f"/api/v1/vifs/web/{MAC_A}/flows")
    assert r.status_code == 404
    hint = "start the server with: vifscope serve --flows"
    assert r.json() == {"error": "flows are off on this server", "hint": hint}
    assert c.get("/api/v1/info").json()["flows"] is False


def test_bpf_unavailable_is_503_with_the_reason(clock: Clock) -> None:
    def refuse(_n: int) -> FlowCollector:
        raise BpfUnavailable("BPF program load refused: EPERM", "run as root")

    flows = ServeFlows(FlowTracker(make=refuse), 10.0, clock)
    err = flows.follow(())
    assert err is not None and err.error == "BPF program load refused: EPERM"
    c = client(flows)
    r = c.get(f"/api/v1/vifs/web/{MAC_A}/flows")
    assert r.status_code == 503 and r.json()["schema"] == "vifscope.flows/1" and r.json()["vifs"] == []
    assert c.get("/api/v1/info").json()["flows"] is True
    assert r.json()["source_errors"][-1] == {"source": "bpf", "error": err.error, "hint": "run as root"}


def test_before_the_first_pass_is_503_retry(stand_in: MapStandIn, clock: Clock) -> None:
    r = client(serve_flows(stand_in, clock)).get(f"/api/v1/vifs/web/{MAC_A}/flows")
    assert r.status_code == 503 and "not running" in r.json()["source_errors"][0]["error"]


def test_window_is_the_delta_since_a_baseline_at_least_window_old(stand_in: MapStandIn, clock: Clock) -> None:
    flows = serve_flows(stand_in, clock, window=10.0)
    c = client(flows)
    bindings = Snapshots(lambda: SNAP).get(0).bindings
    stand_in.records = [ping(1000, 10)]
    assert flows.follow(bindings) is None  # baseline at t=100: 1000 bytes
    stand_in.records = [ping(1600, 16)]
    clock.now = 104.0
    doc = c.get(f"/api/v1/vifs/web/{MAC_A}/flows").json()
    assert doc["seconds"] == 4.0 and doc["window"] == 10.0 and doc["attached"] is True
    (row,) = doc["vifs"][0]["talkers"]
    assert (row["key"], row["peer"], row["out"]["bytes"], row["out"]["packets"]) == ("10.0.0.2", "db", 600, 6)
    assert row["out"]["bps"] == 600 * 8 / 4.0

    clock.now = 105.0
    flows.follow(bindings)  # second baseline at t=105: 1600 bytes
    stand_in.records = [ping(2000, 20)]
    clock.now = 112.0  # the t=100 baseline is the newest one ≥ 10 s old
    assert c.get(f"/api/v1/vifs/web/{MAC_A}/flows").json()["seconds"] == 12.0
    clock.now = 116.0  # now the t=105 one is
    doc = c.get(f"/api/v1/vifs/web/{MAC_A}/flows").json()
    assert doc["seconds"] == 11.0 and doc["vifs"][0]["out"]["bytes"] == 400


def test_a_vif_not_attached_answers_attached_false(stand_in: MapStandIn, clock: Clock) -> None:
    flows = serve_flows(stand_in, clock)
    bindings = Snapshots(lambda: SNAP).get(0).bindings
    flows.follow(tuple(b for b in bindings if b.vif.domain == "db"))  # web's tap not followed
    doc = client(flows).get(f"/api/v1/vifs/web/{MAC_A}/flows").json()
    assert doc["attached"] is False and doc["vifs"] == []


def test_close_detaches_and_no_later_pass_reloads(stand_in: MapStandIn, clock: Clock) -> None:
    made: list[int] = []

    def make(n: int) -> FlowCollector:
        made.append(n)
        return cast(FlowCollector, stand_in)

    flows = ServeFlows(FlowTracker(max_flows=77, make=make), 10.0, clock)
    bindings = Snapshots(lambda: SNAP).get(0).bindings
    flows.follow(bindings)
    c = client(flows)
    assert made == [77] and c.get(f"/api/v1/vifs/web/{MAC_A}/flows").json()["attached"] is True
    flows.close()
    r = c.get(f"/api/v1/vifs/web/{MAC_A}/flows")
    assert r.status_code == 503 and "not running" in r.json()["source_errors"][0]["error"]
    assert flows.follow(bindings) is None and made == [77]
    assert c.get(f"/api/v1/vifs/web/{MAC_A}/flows").status_code == 503


def test_stopped_domain_has_no_tap_to_follow(stand_in: MapStandIn, clock: Clock) -> None:
    from vifscope.model import DomainState

    stopped = replace(SNAP, vifs=tuple(replace(v, domain_state=DomainState.SHUTOFF) for v in SNAP.vifs))
    flows = serve_flows(stand_in, clock)
    flows.follow(Snapshots(lambda: stopped).get(0).bindings)
    assert stand_in.links == {}


def test_a_failed_attach_shows_in_source_errors(stand_in: MapStandIn, clock: Clock) -> None:
    stand_in.refuse = {IF_A}
    flows = serve_flows(stand_in, clock)
    err = flows.follow(Snapshots(lambda: SNAP).get(0).bindings)
    assert err is not None and err.error == f"attach failed: TCX attach to ifindex {IF_A} failed: EBUSY"
    doc = client(flows).get(f"/api/v1/vifs/db/{MAC_B}/flows").json()
    assert doc["attached"] is True and doc["source_errors"] == [{"source": "bpf", "error": err.error, "hint": ""}]


def test_requests_within_a_second_share_one_read_of_the_map(stand_in: MapStandIn, clock: Clock) -> None:
    flows = serve_flows(stand_in, clock)
    flows.follow(Snapshots(lambda: SNAP).get(0).bindings)
    c = client(flows)
    stand_in.records = [ping(1000, 10)]
    clock.now += 2
    assert c.get(f"/api/v1/vifs/web/{MAC_A}/flows").json()["vifs"][0]["out"]["bytes"] == 1000
    stand_in.records = [ping(5000, 50)]
    clock.now += 0.5  # reused: still 1000
    assert c.get(f"/api/v1/vifs/web/{MAC_A}/flows").json()["vifs"][0]["out"]["bytes"] == 1000
    clock.now += 1.0
    assert c.get(f"/api/v1/vifs/web/{MAC_A}/flows").json()["vifs"][0]["out"]["bytes"] == 5000


def test_a_snapshot_without_libvirt_keeps_the_links_and_the_window(stand_in: MapStandIn, clock: Clock) -> None:
    """libvirtd restarting: the snapshot sees no vifs, which is not every tap gone."""
    flows = serve_flows(stand_in, clock)
    c = client(flows)
    stand_in.records = [ping(1000, 10)]
    flows.follow(Snapshots(lambda: SNAP).get(0).bindings)  # baseline at t=100: 1000 bytes
    lost = SourceError("libvirt", "cannot connect to qemu:///system", "is libvirtd running?")
    blind = replace(SNAP, vifs=(), errors=(lost,))
    stand_in.records = [ping(1600, 16)]
    clock.now = 106.0
    err = flows.follow(Snapshots(lambda: blind).get(0).bindings, blind.errors)
    assert err is not None and err.source == "libvirt" and lost.error in err.error
    doc = c.get(f"/api/v1/vifs/web/{MAC_A}/flows").json()
    assert doc["attached"] is True and doc["vifs"][0]["out"]["bytes"] == 600
    assert doc["source_errors"] == [{"source": "libvirt", "error": err.error, "hint": lost.hint}]
    clock.now = 108.0  # libvirt back: attached as before, the error gone
    assert flows.follow(Snapshots(lambda: SNAP).get(0).bindings, SNAP.errors) is None
    doc = c.get(f"/api/v1/vifs/web/{MAC_A}/flows").json()
    assert doc["vifs"][0]["out"]["bytes"] == 600 and doc["source_errors"] == []


def test_a_request_does_not_wait_for_a_pass_attaching(stand_in: MapStandIn, clock: Clock) -> None:
    flows = serve_flows(stand_in, clock)
    bindings = Snapshots(lambda: SNAP).get(0).bindings
    stand_in.records = [ping(1000, 10)]
    flows.follow(bindings)
    stand_in.hold = threading.Event()
    passing = threading.Thread(target=flows.follow, args=(bindings,))
    passing.start()  # blocked in its TCX attaching until hold is set
    answers: list[int] = []
    asking = threading.Thread(
        target=lambda: answers.append(client(flows).get(f"/api/v1/vifs/web/{MAC_A}/flows").status_code)
    )
    try:
        asking.start()
        asking.join(5)
        assert answers == [200] and passing.is_alive()
    finally:
        stand_in.hold.set()
        passing.join(5)
        asking.join(5)


@pytest.mark.parametrize("window", [1.0, 10.0, 60.0])
def test_baselines_every_half_window_keep_the_window_within_one_and_a_half(
    stand_in: MapStandIn, clock: Clock, window: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The baseline loop's cadence (due_in, then baseline, each 50 ms late): every answer after
    the first 1.5 windows covers between window and 1.5 × window (plus the lateness), asked
    just after a baseline and just before the next (the longest)."""
    monkeypatch.setattr("vifscope.serve.flows.READ_REUSE", 0.0)
    late = 0.05
    flows = serve_flows(stand_in, clock, window)
    flows.follow(Snapshots(lambda: SNAP).get(0).bindings)
    start, covered = clock.now, []
    for _ in range(20):
        due = clock.now + flows.due_in() + late
        clock.now = due - 0.001
        covered.append((clock.now - start, flows.read(IF_A).sample.seconds))
        clock.now = due
        flows.baseline()
        covered.append((clock.now - start, flows.read(IF_A).sample.seconds))
    steady = [s for age, s in covered if age >= 1.5 * window]
    assert len(steady) > 10 and min(steady) >= window and max(steady) <= 1.5 * window + late


def test_the_follow_loop_takes_baselines_on_their_own_cadence(stand_in: MapStandIn) -> None:
    """The app's task, on the real clock, window 0.4 s (its passes every 2 s): 1.3 s in, the
    answer covers one window to 1.5 windows (slack for a slow host), not all 1.3 s."""
    flows = ServeFlows(FlowTracker(make=cast(Any, lambda _n: stand_in)), 0.4)
    bindings = Snapshots(lambda: SNAP).get(0).bindings

    async def run() -> float:
        task = asyncio.create_task(follow_loop(flows, lambda: (bindings, ())))
        await asyncio.sleep(1.3)
        try:
            return flows.read(IF_A).sample.seconds
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert 0.4 <= asyncio.run(run()) <= 0.4 * 1.5 + 0.3
