"""MAC allocation under real concurrency, on both stores: the embedded SQLite file and a private
PostgreSQL 15 server (initdb into a temporary directory, reachable only on a unix socket there,
stopped and removed afterwards even when a test fails).

10 processes, each with its own engine, allocate at once: no MAC twice, no allocation lost,
exhaustion is an error that takes nothing, released MACs come back only after quarantine.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.integration.pgserver import empty_store, private_postgres
from vifscope.model.mac import MacPool, MacRange
from vifscope.store import alloc, pools
from vifscope.store.engine import PoolExhausted, open_store
from vifscope.store.tables import mac_addresses, mac_events, mac_pools, metadata

# The timeout fails a hung test from inside (pytest-timeout's signal method), so the private
# PostgreSQL is still stopped and removed; a SIGTERM from outside would skip that.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PROCS = 10
PER_PROC = 1000
BASE = 0x525400100000


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    try:
        with private_postgres() as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store with no rows: a new SQLite file, or the PostgreSQL database emptied."""
    return empty_store(request, tmp_path, ("mac_events", "mac_addresses", "mac_pools"))


def allocate_many(url: str, pool: str, n: int, seed: int, start: float, batch: int = 1) -> tuple[list[int], int]:
    """One process: its own engine, ``n`` MACs in transactions of ``batch`` from ``start`` on;
    stops at the first exhaustion. (MACs, exhaustions seen)."""
    engine = open_store(url)
    rng = random.Random(seed)
    time.sleep(max(0.0, start - time.time()))  # every process begins together
    got: list[int] = []
    try:
        for _ in range(n // batch):
            got.extend(alloc.allocate(engine, pool, batch, now=time.time(), rng=rng, host=f"w{seed}"))
    except PoolExhausted:
        return got, 1
    finally:
        engine.dispose()
    return got, 0


def run_workers(url: str, pool: str, n: int, procs: int = PROCS, batch: int = 1) -> list[tuple[list[int], int]]:
    start = time.time() + 1.0  # after every child has imported and connected
    with multiprocessing.get_context("fork").Pool(procs) as workers:
        return workers.starmap(allocate_many, [(url, pool, n, seed, start, batch) for seed in range(procs)])


def count(url: str, table: object, *where: object) -> int:
    engine = open_store(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()  # type: ignore[arg-type]
    engine.dispose()
    return int(n)


def add_pool(url: str, name: str, size: int, quarantine_s: int = 3600) -> None:
    engine = open_store(url)
    pools.add_pool(engine, MacPool(name, MacRange(BASE, BASE + size - 1), quarantine_s), now=time.time())
    engine.dispose()


def test_ten_processes_ten_thousand_allocations_no_duplicate(url: str) -> None:
    add_pool(url, "big", 1 << 20)
    # Ten MACs a transaction: 1,000 concurrent transactions a store keep the test near 10 s on
    # two cores; single-MAC transactions are measured by bench/mac_alloc.py.
    results = run_workers(url, "big", PER_PROC, batch=10)
    macs = [m for got, _ in results for m in got]
    assert len(macs) == PROCS * PER_PROC and not any(ex for _, ex in results)
    assert len(set(macs)) == len(macs)  # no MAC handed out twice
    assert count(url, mac_addresses) == PROCS * PER_PROC  # no allocation lost or phantom
    assert count(url, mac_events, mac_events.c.action == "allocate") == PROCS * PER_PROC


def test_concurrent_exhaustion_hands_out_each_mac_once_then_refuses(url: str) -> None:
    add_pool(url, "small", 300)
    results = run_workers(url, "small", 100)  # 1,000 asked of 300
    macs = [m for got, _ in results for m in got]
    assert sorted(macs) == list(range(BASE, BASE + 300))  # every one, once
    # a process that got fewer than it asked for was told so (one may have got all 100 first)
    assert all(ex == (len(got) < 100) for got, ex in results) and any(ex for _, ex in results)
    proc = subprocess.run(
        [sys.executable, "-m", "vifscope", "mac", "allocate", "--pool", "small", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.startswith("error: pool 'small'") and "nothing was allocated" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_released_macs_return_only_after_quarantine_under_contention(url: str) -> None:
    add_pool(url, "q", 200, quarantine_s=3)
    engine = open_store(url)
    everything = alloc.allocate(engine, "q", 200, now=time.time(), rng=random.Random(1))
    released = set(random.Random(2).sample(everything, 40))
    t0 = time.time()
    for mac in released:
        alloc.release(engine, mac, now=t0, default_quarantine_s=3600)
    with pytest.raises(PoolExhausted):
        alloc.allocate(engine, "q", now=t0 + 2.9, rng=random.Random(3))  # injected clock: still quarantined
    engine.dispose()
    time.sleep(max(0.0, t0 + 3 - time.time()))  # the workers read the real clock
    results = run_workers(url, "q", 10)  # 100 asked of the 40 that came back
    macs = [m for got, _ in results for m in got]
    assert sorted(macs) == sorted(released)
    assert count(url, mac_events, mac_events.c.action == "expire") == 40


def first_use(url: str, start: float) -> str:
    time.sleep(max(0.0, start - time.time()))
    engine = open_store(url)
    with engine.connect() as conn:
        version = str(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one())
    engine.dispose()
    return version


def test_ten_first_uses_at_once_create_the_schema_once(url: str) -> None:
    """The migration is serialized (SQLite's write lock, a PostgreSQL advisory lock): ten
    processes meeting an empty database at the same instant all get the current schema."""
    from vifscope.store.engine import HEAD

    engine = open_store(url)
    with engine.begin() as conn:  # every table of every migration: an empty database again
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE alembic_version")
    engine.dispose()
    start = time.time() + 1.0
    with multiprocessing.get_context("fork").Pool(PROCS) as workers:
        versions = workers.starmap(first_use, [(url, start)] * PROCS)
    assert versions == [HEAD] * PROCS
    assert count(url, mac_pools) == 0
