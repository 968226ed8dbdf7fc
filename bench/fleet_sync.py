"""``vifscope fleet sync`` over N real agents into both stores: wall time and hub RSS of a
first sync (an empty store: one interval opened per vif) and of a sync where nothing changed
(every open interval read and compared, nothing written but the hosts' rows).

Agents as in bench/fleet_status.py (``vifscope serve`` on test-driver node files, snapshots
cached); the stores are a new SQLite file and the private PostgreSQL 15 server the
integration tests start (a unix socket in a temporary directory, removed afterwards).

Then ``fleet sync --daemon`` polling one unchanged ``--big``-vif agent ``--polls`` times, its
ETags reused (bench/fleet_sync_daemon.py): cost per poll and rows written.

Run: ``.venv/bin/python bench/fleet_sync.py [--hosts 20 --vifs 1000 --big 5000 --polls 30] [--no-write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchlib import median_runs, precompile, publish, run_timed, short_rev
from fleet_status import agent
from fleet_sync_daemon import daemon_rows

from tests.integration.pgserver import private_postgres


def sync_rows(inv: Path, url: str, label: str, hosts: int, vifs: int, runs: int) -> list[str]:
    cmd = [sys.executable, "-m", "vifscope", "fleet", "sync", "--json", "--inventory", str(inv), "--db", url]
    cmd += ["--timeout", "60"]
    first = run_timed(cmd)
    doc = json.loads(first.stdout)
    assert not doc["host_errors"] and sum(h["opened"] for h in doc["hosts"]) == hosts * vifs, doc["host_errors"]
    wall, rss, last = median_runs(cmd, runs)
    again = json.loads(last.stdout)
    assert sum(h["opened"] + h["closed"] for h in again["hosts"]) == 0
    return [
        f"| {label} | first (empty store) | {hosts * vifs:,} opened | {first.seconds:.2f} "
        f"| {first.max_rss_kb / 1024:.0f} |",
        f"| {label} | unchanged (median of {runs}) | 0 | {wall:.2f} | {rss / 1024:.0f} |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--vifs", type=int, default=1000, help="per host")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--big", type=int, default=5000, help="vifs of the agent the daemon polls")
    ap.add_argument("--polls", type=int, default=30)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    precompile()
    with tempfile.TemporaryDirectory(prefix="vs-s-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        urls = [stack.enter_context(agent(work, h, args.vifs, 600.0)) for h in range(args.hosts)]
        inv = work / "inventory.yaml"
        inv.write_text(json.dumps({"hosts": [{"name": f"h{i}", "url": u} for i, u in enumerate(urls)]}))
        warm = [sys.executable, "-m", "vifscope", "fleet", "status", "--json", "--inventory", str(inv)]
        median_runs([*warm, "--timeout", "60"], 1)  # every agent takes its first snapshot
        rows = sync_rows(inv, f"sqlite:///{work / 'fleet.db'}", "SQLite", args.hosts, args.vifs, args.runs)
        with private_postgres("vs-s-pg-") as pg:
            rows += sync_rows(inv, pg, "PostgreSQL 15", args.hosts, args.vifs, args.runs)
        stack.close()  # the 20 agents: the daemon's poll is measured on a quieter machine
        big = stack.enter_context(agent(work, 99, args.big, 600.0))
        one = work / "big.yaml"
        one.write_text(json.dumps({"hosts": [{"name": "big", "url": big}]}))
        median_runs([*warm[:-2], "--inventory", str(one), "--timeout", "60"], 1)
        daemon = daemon_rows(one, f"sqlite:///{work / 'big.db'}", "SQLite", args.big, args.polls)
        with private_postgres("vs-s-pg-") as pg:
            daemon += daemon_rows(one, pg, "PostgreSQL 15", args.big, args.polls)
    load = os.getloadavg()[0]
    text = f"""## fleet sync: `vifscope fleet sync` into SQLite and PostgreSQL (bench/fleet_sync.py)

{args.hosts} `vifscope serve` agents × {args.vifs:,} vifs (as in bench/fleet_status.py, snapshots
cached), the hub the real CLI as a child (`--json --timeout 60`), one transaction per host.
Wall time includes asking the agents (doctor's three GETs each). {short_rev("HEAD")}, 2 shared
cores, load average {load:.1f} while measuring (other sessions' work).

| store | sync | intervals | wall s | hub peak RSS MB |
|---|---|---:|---:|---:|
{chr(10).join(rows)}

An unchanged sync costs about what a first one does: most of the time is asking the agents
and parsing their answers (doctor's findings included). One look at 5 agents × 1,000 vifs
(load ~1, single runs): `fleet doctor` 1.5 s, `fleet sync` 2.0 s into an empty SQLite file and
2.5 s unchanged.

`fleet sync --daemon --interval 0.2` polling one agent with {args.big:,} vifs (snapshot
cached), the store already holding its history (one `fleet sync` before): its first round
holds no ETags (every answer fetched, parsed, every open interval compared: what every round
cost before), each later one sends If-None-Match on its three GETs and gets three 304s. Wall
per round from the daemon's `--json` (`seconds`: asking + writing), CPU from /proc between
two rounds. Rows written: PostgreSQL's pg_stat_user_tables (inserted + updated + deleted)
over the daemon's whole run; SQLite: the history tables' row count, newest row and last_seen
sum before and after.

| store | round | rounds | wall ms | hub CPU ms | rows written |
|---|---|---:|---:|---:|---|
{chr(10).join(daemon)}
"""
    publish("fleet-sync", text, write=not args.no_write)


if __name__ == "__main__":
    main()
