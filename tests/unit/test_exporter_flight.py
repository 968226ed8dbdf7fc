"""Single-flight collection and slow clients, with real threads, a real HTTP server and real
sockets. The host's sources are replaced by one that blocks on an Event until the test lets
it go, so "every scrape arrived while the collection ran" is a fact, not a timing guess; it
counts its takes and how many ran at once. Limits are generous (behaviour, not speed: the
figures are in RELIABILITY.md, by bench/load.py).
"""

from __future__ import annotations

import gzip
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.ipjson import bridge, snapshot, tap
from vifscope.cli.exporter import CLIENT_TIMEOUT, make_handler, server_class
from vifscope.exporter.collector import Exporter
from vifscope.exporter.flight import SingleFlight
from vifscope.model import DeclaredVif, DomainState, HostSnapshot
from vifscope.sources.deadline import TimedSnapshot

T = TypeVar("T")
LIMIT = 30.0  # seconds: "it answers", not "it is fast"


def host(vifs: int) -> HostSnapshot:
    """``vifs`` domains with one tap each on br0, all bound."""
    declared = [
        DeclaredVif(
            f"d{i}", f"00000000-0000-0000-0000-{i:012d}", DomainState.RUNNING, 0, "bridge",
            f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}", target=f"vnet{i}", source="br0",
        )
        for i in range(vifs)
    ]  # fmt: skip
    return snapshot(declared, [bridge("br0"), *(tap(f"vnet{i}", master="br0") for i in range(vifs))])


class BlockingSource:
    """A snapshotter whose every take waits for ``release`` (or returns at once once it is set)."""

    uri = "test:///blocking"
    deep = False

    def __init__(self, snap: HostSnapshot) -> None:
        self.snap = snap
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.takes = 0
        self.active = 0
        self.most_at_once = 0

    def take(self, timeout: float | None = None) -> TimedSnapshot:
        with self._lock:
            self.takes += 1
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
        try:
            assert self.release.wait(LIMIT), "the test never released the source"
            return TimedSnapshot(self.snap, None, (("libvirt", 0.0), ("netlink", 0.0)))
        finally:
            with self._lock:
                self.active -= 1


def until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def in_threads(n: int, fn: Callable[[], T]) -> tuple[list[threading.Thread], list[T], list[BaseException]]:
    """``fn`` in ``n`` threads at once: (the threads, what they returned, what they raised)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(fn())
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results, errors


def bound_domains(body: bytes) -> set[str]:
    return {
        s.labels["domain"]
        for fam in text_string_to_metric_families(body.decode())
        for s in fam.samples
        if s.name == "vifscope_vif_bound" and s.value == 1
    }


def test_single_flight_shares_one_run_and_its_failure() -> None:
    flight: SingleFlight[int] = SingleFlight()
    go = threading.Event()
    runs: list[int] = []

    def work() -> int:
        runs.append(1)
        assert go.wait(LIMIT)
        return len(runs)

    threads, results, errors = in_threads(12, lambda: flight.run(work))
    until(lambda: flight.waiting == 11, "12 callers: one leads, 11 wait")
    go.set()
    for t in threads:
        t.join(LIMIT)
    assert not errors and results == [1] * 12 and runs == [1]
    assert (flight.flights, flight.calls) == (1, 12)
    assert flight.run(work) == 2  # arriving after the flight finished: a new one

    def broken() -> int:
        assert go.wait(LIMIT)
        raise RuntimeError("source bug")

    go.clear()
    threads, results, errors = in_threads(4, lambda: flight.run(broken))
    until(lambda: flight.waiting == 3, "4 callers on the failing flight")
    go.set()
    for t in threads:
        t.join(LIMIT)
    assert not results and [str(e) for e in errors] == ["source bug"] * 4
    assert flight.flights == 3


def test_single_flight_key_never_shares_across_keys_nor_overlaps() -> None:
    flight: SingleFlight[str] = SingleFlight()
    go = threading.Event()
    active: list[str] = []
    most = [0]

    def work(key: str) -> str:
        active.append(key)
        most[0] = max(most[0], len(active))
        assert go.wait(LIMIT)
        active.remove(key)
        return key

    old, old_results, _ = in_threads(1, lambda: flight.run(lambda: work("old"), key=1))
    until(lambda: active == ["old"], "the first flight runs")
    new, new_results, errors = in_threads(3, lambda: flight.run(lambda: work("new"), key=2))
    time.sleep(0.2)  # give the key-2 callers time to (wrongly) start a flight of their own
    assert active == ["old"]
    go.set()
    for t in old + new:
        t.join(LIMIT)
    assert not errors and old_results == ["old"] and new_results == ["new"] * 3
    assert most[0] == 1


@pytest.fixture
def blocked() -> tuple[Exporter, BlockingSource]:
    source = BlockingSource(host(40))
    return Exporter(source.uri, audit_log=None, snapshotter=source), source


def test_concurrent_scrapes_cost_one_collection(blocked: tuple[Exporter, BlockingSource]) -> None:
    exporter, source = blocked
    threads, bodies, errors = in_threads(20, exporter.render_metrics)
    until(lambda: exporter.flight.waiting == 19, "20 scrapes: one collects, 19 wait")
    source.release.set()
    for t in threads:
        t.join(LIMIT)
    assert not errors and len(bodies) == 20
    assert source.takes == 1 and source.most_at_once == 1
    assert all(bound_domains(b) == {f"d{i}" for i in range(40)} for b in bodies)
    assert len({id(b) for b in bodies}) == 1  # rendered once, the same bytes handed to all
    exporter.render_metrics()
    assert source.takes == 2  # a scrape after the collection finished collects again


@pytest.fixture
def server(blocked: tuple[Exporter, BlockingSource]) -> Iterator[tuple[str, int]]:
    exporter, _ = blocked
    srv = server_class("127.0.0.1")(("127.0.0.1", 0), make_handler(exporter, 5.0, lambda _line: None))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", int(srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


def get_metrics(addr: tuple[str, int], encoding: str) -> bytes:
    conn = http.client.HTTPConnection(*addr, timeout=LIMIT)
    try:
        conn.request("GET", "/metrics", headers={"Accept-Encoding": encoding})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, body
        return gzip.decompress(body) if resp.headers["Content-Encoding"] == "gzip" else body
    finally:
        conn.close()


def test_concurrent_http_scrapes_share_one_collection(
    blocked: tuple[Exporter, BlockingSource], server: tuple[str, int]
) -> None:
    exporter, source = blocked
    plain, _, plain_errors = in_threads(8, lambda: get_metrics(server, "identity"))
    packed, _, packed_errors = in_threads(8, lambda: get_metrics(server, "gzip"))
    until(lambda: exporter.flight.waiting == 15, "16 scrapes over HTTP: one collects, 15 wait")
    source.release.set()
    for t in plain + packed:
        t.join(LIMIT)
    assert not plain_errors and not packed_errors
    assert source.takes == 1 and exporter.flight.calls == 16


def test_slow_clients_starve_nobody() -> None:
    """One client reads its answer a byte a second, another sends half a request line and
    stalls: scrapes in between still complete. The body (~6 MB) outgrows every socket buffer
    on the way, so the slow reader's handler really is stuck in its write."""
    source = BlockingSource(host(4000))
    source.release.set()
    exporter = Exporter(source.uri, audit_log=None, snapshotter=source)
    size = len(exporter.render_metrics())
    assert size > 5_000_000  # more than the reader's and the server's socket buffers hold
    lines: list[str] = []
    srv = server_class("127.0.0.1")(("127.0.0.1", 0), make_handler(exporter, 5.0, lines.append))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    addr = ("127.0.0.1", int(srv.server_address[1]))
    reader, sender = socket.socket(), socket.create_connection(addr)
    try:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect(addr)
        reader.sendall(b"GET /metrics HTTP/1.0\r\nAccept-Encoding: identity\r\n\r\n")
        sender.sendall(b"GET /metr")
        got = len(reader.recv(1))
        for _ in range(3):
            body = get_metrics(addr, "identity")  # whole: every vif, up to the last family
            assert body.count(b"\nvifscope_vif_bound{") == 4000 and b"\nvifscope_build_info{" in body
            got += len(reader.recv(1))
            time.sleep(0.1)
        assert got < size // 10  # the slow reader is still far from the end of its answer
    finally:
        reader.close()
        sender.close()
        srv.shutdown()
        srv.server_close()


def test_a_stalled_client_is_dropped_not_kept_forever() -> None:
    """A request line that never ends holds one thread until the handler's socket timeout
    (CLIENT_TIMEOUT, 60 s; shortened here), then the connection is closed."""
    source = BlockingSource(host(1))
    source.release.set()
    handler = make_handler(Exporter(source.uri, audit_log=None, snapshotter=source), 5.0, lambda _line: None)
    assert handler.timeout == CLIENT_TIMEOUT
    handler.timeout = 0.3
    srv = server_class("127.0.0.1")(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    stalled = socket.create_connection(("127.0.0.1", int(srv.server_address[1])), timeout=LIMIT)
    try:
        stalled.sendall(b"GET /metr")
        assert stalled.recv(1) == b""  # closed by the server (a hang would raise TimeoutError here)
    finally:
        stalled.close()
        srv.shutdown()
        srv.server_close()


def test_listen_backlog_takes_a_burst_of_scrapers() -> None:
    """socketserver's default backlog (5) dropped SYNs under 50 parallel scrapers: each drop a
    one-second retry (bench/load.py saw p99 0.7 s on a 100-vif host)."""
    assert server_class("127.0.0.1").request_queue_size >= 64
