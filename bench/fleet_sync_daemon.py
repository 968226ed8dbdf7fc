"""``fleet sync --daemon`` polling one unchanged 5,000-vif agent: what each poll costs the hub
and the store once the agent's ETags are reused (bench/fleet_sync.py imports this).

The store is filled by one ``fleet sync`` first (the host's history is there). The daemon's
first round holds no tags: it fetches every answer, parses it and compares every open
interval (what each round cost before the tags). Every later round sends If-None-Match and
gets 304s. Per round: the daemon's own wall time (its ``--json`` ``seconds``) and its CPU
(/proc/PID/stat between two rounds' lines). Store writes: PostgreSQL's own counters
(pg_stat_user_tables: rows inserted, updated, deleted per table, read after the daemon
exited, when its backend has flushed them); SQLite: the history tables' row counts and
newest row before and after.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

TABLES = ("fleet_hosts", "fleet_vifs", "fleet_addresses")
TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _writes(url: str) -> dict[str, int]:
    """Rows written per table: PostgreSQL's counters; SQLite's row counts and newest rows."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            q = "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
            out = {str(r[0]): int(r[1]) for r in conn.execute(text(q))}
        else:
            q = "SELECT count(*) + coalesce(max(id), 0) + count(valid_to) FROM fleet_vifs"
            out = {"fleet_vifs": int(conn.execute(text(q)).scalar_one())}
            q = "SELECT count(*) + coalesce(sum(last_seen), 0) FROM fleet_addresses"
            out["fleet_addresses"] = int(conn.execute(text(q)).scalar_one())
    engine.dispose()
    return out


def daemon_run(inv: Path, url: str, polls: int, interval: float) -> tuple[list[dict[str, Any]], list[float]]:
    cmd = [sys.executable, "-m", "vifscope", "fleet", "sync", "--json", "--inventory", str(inv), "--db", url]
    cmd += ["--timeout", "60", "--daemon", "--interval", str(interval)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    docs, cpus = [], []
    try:
        assert proc.stdout is not None
        for _ in range(polls + 1):
            line = proc.stdout.readline()
            if not line:
                raise SystemExit("fleet sync --daemon stopped")
            cpus.append(_cpu(proc.pid))
            docs.append(json.loads(line))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return docs, cpus


def daemon_rows(inv: Path, url: str, label: str, vifs: int, polls: int) -> list[str]:
    one = [sys.executable, "-m", "vifscope", "fleet", "sync", "--json", "--inventory", str(inv), "--db", url]
    subprocess.run([*one, "--timeout", "60"], check=True, capture_output=True, timeout=300)
    time.sleep(1.5)  # PostgreSQL: the exited backend's counters are flushed
    before = _writes(url)
    docs, cpus = daemon_run(inv, url, polls, 0.2)
    time.sleep(1.5)
    after = _writes(url)
    first, rest = docs[0]["hosts"][0], [d["hosts"][0] for d in docs[1:]]
    assert first["vifs"] == vifs and not first["unchanged"] and first["opened"] == first["closed"] == 0, first
    assert all(h["unchanged"] and h["opened"] == h["closed"] == 0 for h in rest), rest
    delta = {t: after.get(t, 0) - before.get(t, 0) for t in TABLES if t in after}
    if "fleet_hosts" in delta:  # PostgreSQL's counters: round 0 upserts the host's row, each 304 round touches it
        vifs_rows, addr_rows = delta["fleet_vifs"], delta["fleet_addresses"]
        writes = f"fleet_vifs {vifs_rows}, fleet_addresses {addr_rows}, fleet_hosts {delta['fleet_hosts'] - 1} touches"
    else:  # SQLite: fingerprints of the history tables (0: not one row added, closed or re-seen)
        same = delta["fleet_vifs"] == delta["fleet_addresses"] == 0
        writes = "fleet_vifs, fleet_addresses: " + ("not one row changed" if same else "CHANGED")
    wall = [d["seconds"] * 1000 for d in docs]
    cpu = (cpus[-1] - cpus[0]) * 1000 / polls  # the mean: /proc counts 10 ms ticks
    return [
        f"| {label} | first round, no tags: 200s, parse, compare | 1 | {wall[0]:.0f} | - | |",
        f"| {label} | unchanged, If-None-Match: 304s (median) | {polls} | {statistics.median(wall[1:]):.1f} "
        f"| {cpu:.1f} (mean) | |",
        f"| {label} | rows written by those {polls + 1} rounds | | | | {writes} |",
    ]
