"""``vifscope fleet status`` over N real agents: wall time and hub RSS, and what polling an
unchanged host costs the hub (the ETag / 304 path).

Each agent is a ``vifscope serve`` process on a loopback port with its own libvirt
test-driver node file (D domains x K NICs; MACs unique per host). The hub is the real CLI,
run as a child, timed with benchlib (wall time, peak RSS). Then one agent with ``--big``
vifs: the hub's per-poll wall and CPU time for a full answer (200) against a 304, with the
agent's interval long enough that its snapshot is cached (the transport and the tag, not
libvirt, are measured).

Run: ``.venv/bin/python bench/fleet_status.py [--hosts 20 --vifs 1000 --big 5000] [--no-write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import median_runs, precompile, publish, short_rev

NICS = 4
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"


def node_xml(host: int, vifs: int) -> str:
    doms = []
    for d in range((vifs + NICS - 1) // NICS):
        nics = "".join(
            f"<interface type='bridge'><mac address='52:54:{host:02x}:{d >> 8:02x}:{d & 255:02x}:{n:02x}'/>"
            f"<source bridge='vs-f-nobr'/></interface>"
            for n in range(min(NICS, vifs - d * NICS))
        )
        doms.append(
            f"<domain type='test'><name>vs-f-h{host}-d{d}</name><memory>65536</memory>"
            f"<os><type>hvm</type></os><devices>{nics}</devices></domain>"
        )
    return "<node>" + "".join(doms) + "</node>"


@contextmanager
def agent(work: Path, host: int, vifs: int, interval: float) -> Iterator[str]:
    node = work / f"h{host}.xml"
    node.write_text(node_xml(host, vifs))
    cmd = [sys.executable, "-m", "vifscope", "-c", f"test://{node}", "serve", "--json", "--listen", "127.0.0.1:0"]
    cmd += ["--host-id", f"h{host}", "--audit-log", str(work / "audit.jsonl"), "--interval", str(interval)]
    cmd += ["--timeout", "60"]  # the agents share 2 cores: no source may miss its deadline
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"agent h{host} did not start")
        yield json.loads(line)["url"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fleet_run(work: Path, hosts: int, vifs: int, runs: int) -> str:
    with ExitStack() as stack:
        urls = [stack.enter_context(agent(work, h, vifs, 30.0)) for h in range(hosts)]
        inv = work / "inventory.yaml"
        inv.write_text(json.dumps({"hosts": [{"name": f"h{i}", "url": u} for i, u in enumerate(urls)]}))
        cmd = [
            sys.executable,
            "-m",
            "vifscope",
            "fleet",
            "status",
            "--json",
            "--inventory",
            str(inv),
            "--timeout",
            "30",
        ]
        median_runs(cmd, 1)  # every agent takes its first snapshot
        wall, rss, last = median_runs(cmd, runs)
    doc = json.loads(last.stdout)
    got = {h["name"]: (h["vifs"], h["source_errors"]) for h in doc["hosts"]}
    assert len(doc["vifs"]) == hosts * vifs and not doc["host_errors"], (doc["host_errors"], got)
    return f"| {hosts} | {vifs:,} | {hosts * vifs:,} | {wall:.2f} | {rss / 1024:.0f} | {len(last.stdout) / 1e6:.1f} |"


def poll_run(work: Path, vifs: int, polls: int) -> list[str]:
    rows = []
    with agent(work, 99, vifs, 600.0) as url, httpx.Client(timeout=60) as client:
        first = client.get(url + "api/v1/vifs")
        tag = first.headers["etag"]
        for label, headers in (("full answer (200)", {}), ("unchanged, If-None-Match (304)", {"If-None-Match": tag})):
            walls, cpus, size, status = [], [], 0, 0
            for _ in range(polls):
                w0, c0 = time.perf_counter(), time.process_time()
                resp = client.get(url + "api/v1/vifs", headers=headers)
                _ = resp.json() if resp.status_code == 200 else None  # the hub parses what it gets
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
                size, status = len(resp.content), resp.status_code
            rows.append(
                f"| {label} | {status} | {size:,} | {statistics.median(walls) * 1000:.1f} | "
                f"{statistics.median(cpus) * 1000:.1f} |"
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--vifs", type=int, default=1000, help="per host")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--big", type=int, default=5000, help="vifs of the polled agent")
    ap.add_argument("--polls", type=int, default=30)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    precompile()
    with tempfile.TemporaryDirectory(prefix="vs-f-bench-") as tmp:
        work = Path(tmp)
        fleet_row = fleet_run(work, args.hosts, args.vifs, args.runs)
        poll_rows = poll_run(work, args.big, args.polls)
    load = os.getloadavg()[0]
    text = f"""## fleet: `vifscope fleet status` over real agents (bench/fleet_status.py)

{args.hosts} `vifscope serve` agents on loopback, each on its own libvirt test-driver node file
({NICS} NICs a domain, MACs unique per host), the hub the real CLI as a child (`--json`,
`--timeout 30`); median of {args.runs} runs after one warm-up (each agent's snapshot is then cached:
this is the hub's fan-out, transfer, parse and merge, not libvirt). {short_rev("HEAD")}, 2 shared cores,
load average {load:.1f} while measuring (other sessions' work).

| hosts | vifs a host | vifs | wall s | hub peak RSS MB | JSON MB |
|---:|---:|---:|---:|---:|---:|
{fleet_row}

One agent with {args.big:,} vifs polled {args.polls} times by an httpx client (the hub's), agent
snapshot cached: per poll, median wall and hub CPU (request + parsing the JSON when one comes).

| poll | HTTP | body bytes | wall ms | hub CPU ms |
|---|---:|---:|---:|---:|
{chr(10).join(poll_rows)}
"""
    publish("fleet", text, write=not args.no_write)


if __name__ == "__main__":
    main()
