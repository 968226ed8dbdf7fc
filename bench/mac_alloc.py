"""MAC allocations per second on each store (embedded SQLite, a private PostgreSQL 15), with one
process and with ten at once, for both candidate strategies: random draws (what vifscope
does) and the lowest free MAC (the linear scan every allocator would converge on).

Each allocation is its own transaction (``vifscope mac allocate`` once); every process has its
own engine and starts at the same instant. The PostgreSQL server is the integration tests'
private one (initdb in a temporary directory, unix socket only, default durability settings:
fsync on). Needs root. Run: ``.venv/bin/python bench/mac_alloc.py [--n 1000]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from benchlib import write_section  # noqa: E402

from tests.integration.pgserver import private_postgres  # noqa: E402
from vifscope.model.mac import MacPool, MacRange  # noqa: E402
from vifscope.store import alloc, pools  # noqa: E402
from vifscope.store.alloc import Strategy  # noqa: E402
from vifscope.store.engine import open_store  # noqa: E402

BASE = 0x525400100000
POOL_SIZE = 1 << 20


def reset(url: str) -> None:
    engine = open_store(url)
    with engine.begin() as conn:
        for table in ("mac_events", "mac_addresses", "mac_pools"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    pools.add_pool(engine, MacPool("bench", MacRange(BASE, BASE + POOL_SIZE - 1)), now=time.time())
    engine.dispose()


def worker(url: str, n: int, seed: int, strategy: str, start: float) -> tuple[int, float]:
    engine = open_store(url)
    rng = random.Random(seed)
    time.sleep(max(0.0, start - time.time()))
    t0 = time.perf_counter()
    for _ in range(n):
        alloc.allocate(engine, "bench", now=time.time(), rng=rng, strategy=Strategy(strategy))
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return n, elapsed


def measure(url: str, procs: int, n: int, strategy: Strategy) -> float:
    """Allocations per second: all of them over the wall time of the slowest process."""
    reset(url)
    start = time.time() + 1.0
    with multiprocessing.get_context("fork").Pool(procs) as p:
        results = p.starmap(worker, [(url, n, seed, strategy.value, start) for seed in range(procs)])
    return sum(r[0] for r in results) / max(r[1] for r in results)


def rows(name: str, url: str, n1: int, n10: int) -> list[str]:
    out = []
    for strategy in Strategy:
        one = measure(url, 1, n1, strategy)
        ten = measure(url, 10, n10, strategy)
        line = f"| {name} | {strategy.value} | {one:,.0f} | {ten:,.0f} |"
        print(line, flush=True)
        out.append(line)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="allocations by the single process (each of ten: n/2)")
    args = ap.parse_args()
    n1, n10 = args.n, args.n // 2
    table = ["| store | candidates | 1 process (alloc/s) | 10 processes (alloc/s, total) |", "|---|---|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="vs-bench-") as tmp:
        table += rows("SQLite (WAL, synchronous=NORMAL)", f"sqlite:///{tmp}/vifscope.db", n1, n10)
    with private_postgres("vs-bench-pg-") as url:
        table += rows("PostgreSQL 15 (unix socket, fsync on)", url, n1, n10)
    body = "\n".join(
        [
            "## MAC allocation (`bench/mac_alloc.py`)",
            "",
            f"One transaction per MAC from a pool of {POOL_SIZE:,}; 1 process x {n1} and 10 processes x {n10} "
            f"at once, each its own engine. {platform.machine()}, {os.cpu_count()} CPUs, "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}.",
            "",
            *table,
            "",
            "random: random draws inside the range, then the next gap after a random point (vifscope's); "
            "first-free: the lowest free MAC every time (a linear scan from the start).",
        ]
    )
    write_section("mac-alloc", body)


if __name__ == "__main__":
    main()
