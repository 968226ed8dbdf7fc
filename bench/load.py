"""Load on the daemons: parallel /metrics scrapes and API readers against a synthetic host.

Builds N domains x 4 NICs with vifscope.lab.synth (the domains in libvirtd's shared test
driver over its socket, real bridges and held taps in the netns vs-load), starts
``vifscope exporter`` and ``vifscope serve`` with their default flags inside the namespace,
then for --seconds runs --scrapers threads looping on GET /metrics (``Accept-Encoding: gzip``,
as Prometheus asks) and --readers threads looping over the API's read routes, in client
processes of 10 threads each (inside the namespace too). Every distinct answer is checked:
the metrics carry every vif of this host with libvirt and netlink up, the JSON documents
every vif. Reports errors, p50/p99 latency, RSS of each daemon before and after, and how many
collections served how many scrapes (distinct bodies: each collection's
``vifscope_scrape_duration_seconds`` differs, the scrapes sharing one get the same bytes).
Writes the "load" section of RELIABILITY.md. Run as root (``make soak``):
``.venv/bin/python bench/load.py [--domains 1250] [--seconds 60] [--scrapers 50] [--readers 50]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NS = "vs-load"  # never vs-scale: another benchmark's
PREFIX = "vs-ld"  # our domains' names: libvirtd's test driver is shared, others may hold domains too
NICS = 4
THREADS_PER_CLIENT = 10  # client processes of 10 threads: the clients' own GIL must not be the bottleneck
API_ROUTES = ("/api/v1/vifs", "/api/v1/networks", "/api/v1/topology", "/healthz", "/api/v1/findings")
RSS_BOUND_MB = 50.0  # stated bound: a daemon's RSS growth over the second half of the run
RELIABILITY = Path(__file__).resolve().parent.parent / "RELIABILITY.md"
SCRIPT = Path(__file__).resolve()


# ---- client side: runs inside the namespace, prints one JSON line ----


Verdict = tuple[str, str] | None  # None: a valid answer; ("error" | "degraded", what)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)  # by route
    problems: dict[str, list[str]] = field(default_factory=lambda: {"error": [], "degraded": []})
    checked: dict[str, Verdict] = field(default_factory=dict)  # body digest -> its verdict
    taken: set[str] = field(default_factory=set)  # distinct snapshots (taken_at) the API served
    lock: threading.Lock = field(default_factory=threading.Lock)


def check_metrics(wire: bytes, gzipped: bool, vifs: int, prefix: str) -> Verdict:
    """Every vif of this host, libvirt and netlink up; a source down is a degraded answer (what
    the exporter is for: a slow source costs its series, not the scrape), anything else an error."""
    text = zlib.decompress(wire, wbits=31) if gzipped else wire
    for source in ("libvirt", "netlink"):
        if f'\nvifscope_source_up{{source="{source}"}} 1.0'.encode() not in text:
            return "degraded", f"/metrics: {source} down"
    ours = text.count(f'\nvifscope_vif_bound{{domain="{prefix}'.encode())
    return ("error", f"/metrics: {ours} of {vifs} vifs") if ours != vifs else None


def check_json(route: str, wire: bytes, vifs: int, prefix: str) -> tuple[Verdict, str | None]:
    """(verdict, taken_at) of one API answer."""
    doc = json.loads(wire)
    down = sorted({e["source"] for e in doc.get("source_errors", ())} & {"libvirt", "netlink"})
    if down or doc.get("status") == "degraded":
        return ("degraded", f"{route}: {', '.join(down) or 'a source'} down"), None
    if route == "/api/v1/vifs":
        ours = sum(1 for v in doc["vifs"] if v["domain"].startswith(prefix))
        if ours != vifs:
            return ("error", f"{route}: {ours} of {vifs} vifs"), None
    taken = doc.get("taken_at") if route in ("/api/v1/vifs", "/api/v1/networks") else None
    return None, taken


def fetch(base: str, route: str) -> tuple[int, bytes, bool]:
    """(status, body, gzipped); an HTTP error status is an answer too (healthz says 503 + why)."""
    req = urllib.request.Request(base + route, headers={"Accept-Encoding": "gzip"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Encoding") == "gzip"
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Encoding") == "gzip"


def judge(route: str, status: int, wire: bytes, gzipped: bool, vifs: int, prefix: str) -> tuple[Verdict, str | None]:
    if route == "/healthz" and status == 503:
        return check_json(route, wire, vifs, prefix)
    if status != 200:
        return ("error", f"{route}: HTTP {status}"), None
    if route == "/metrics":
        return check_metrics(wire, gzipped, vifs, prefix), None
    return check_json(route, wire, vifs, prefix)


def one_request(base: str, route: str, vifs: int, prefix: str, tally: Tally) -> None:
    start = time.perf_counter()
    try:
        status, wire, gzipped = fetch(base, route)
    except OSError as exc:  # refused, reset, timed out: the request failed
        with tally.lock:
            tally.problems["error"].append(f"{route}: {type(exc).__name__}: {exc}")
        return
    seconds = time.perf_counter() - start
    digest = hashlib.blake2b(wire, digest_size=16).hexdigest()
    with tally.lock:
        tally.latencies.setdefault(route, []).append(seconds)
        known = digest in tally.checked
    taken = None
    # The same bytes as an answer already checked (a shared collection) need no second look.
    verdict = tally.checked[digest] if known else None
    if not known:
        verdict, taken = judge(route, status, wire, gzipped, vifs, prefix)
    with tally.lock:
        tally.checked[digest] = verdict
        if taken:
            tally.taken.add(taken)
        if verdict is not None:
            tally.problems[verdict[0]].append(verdict[1])


def client(base: str, kind: str, threads: int, seconds: float, vifs: int, prefix: str) -> dict[str, Any]:
    routes = ("/metrics",) if kind == "metrics" else API_ROUTES
    tally = Tally()
    stop = time.monotonic() + seconds

    def loop(offset: int) -> None:
        n = offset
        while time.monotonic() < stop:
            one_request(base, routes[n % len(routes)], vifs, prefix, tally)
            n += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {
        "latencies": tally.latencies,
        "errors": tally.problems["error"],
        "degraded": tally.problems["degraded"],
        "digests": sorted(tally.checked),
        "taken": sorted(tally.taken),
    }


# ---- driver ----


@contextmanager
def daemon(ns: str, uri: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``vifscope ARGS --json --listen 127.0.0.1:0`` in the namespace: (process, its URL)."""
    cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "vifscope", "-c", uri, *args]
    proc = subprocess.Popen([*cmd, "--json", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{args[0]} did not start (rc {proc.wait()})")
        url = str(json.loads(line)["url"])
        yield proc, url[: url.index("/", len("http://"))]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    """Resident set of one process (``ip netns exec`` execs the command: same pid)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def memory(exporter: int, serve: int) -> dict[str, float]:
    out = {"exporter": rss_mb(exporter), "serve": rss_mb(serve)}
    workers = children(exporter)  # the exporter's check worker process
    if workers:
        out["exporter's check worker"] = sum(rss_mb(p) for p in workers)
    return out


def warm(base: str, routes: list[str]) -> None:
    """One answer per route before measuring: caches filled, the first check run done."""
    for route in routes:
        with urllib.request.urlopen(base + route, timeout=300) as resp:
            resp.read()


def warm_in(ns: str, base: str, routes: tuple[str, ...]) -> None:
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(SCRIPT), "--warm", base, *routes], check=True)


def hammer(
    ns: str, urls: dict[str, str], counts: dict[str, int], seconds: float, vifs: int, prefix: str
) -> dict[str, Any]:
    """Client processes for each kind at once; their JSON merged per kind."""
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    for kind, total in counts.items():
        for i in range(math.ceil(total / THREADS_PER_CLIENT)):
            threads = min(THREADS_PER_CLIENT, total - i * THREADS_PER_CLIENT)
            cmd = ["ip", "netns", "exec", ns, sys.executable, str(SCRIPT), "--client", kind, urls[kind]]
            cmd += [str(threads), str(seconds), str(vifs), prefix]
            procs.append((kind, subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)))
    merged: dict[str, dict[str, Any]] = {
        k: {"latencies": {}, "errors": [], "degraded": [], "digests": set(), "taken": set()} for k in counts
    }
    for kind, proc in procs:
        out, _ = proc.communicate(timeout=seconds + 300)
        if proc.returncode != 0:
            raise RuntimeError(f"{kind} client failed (rc {proc.returncode})")
        part, m = json.loads(out), merged[kind]
        for route, values in part["latencies"].items():
            m["latencies"].setdefault(route, []).extend(values)
        m["errors"] += part["errors"]
        m["degraded"] += part["degraded"]
        m["digests"] |= set(part["digests"])
        m["taken"] |= set(part["taken"])
    return merged


def sample_every(period: float, exporter: int, serve: int, into: list[dict[str, float]]) -> threading.Event:
    """RSS of each daemon every ``period`` seconds until the returned Event is set. A leak makes
    the second half's peak outgrow the first half's; fifty answers in flight at once set a
    high-water mark early, which allocator fragmentation then moves by tens of MB either way."""
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(period):
            into.append(memory(exporter, serve))

    threading.Thread(target=sample, daemon=True).start()
    return stop


def run_load(
    ns: str, domains: int, seconds: float, scrapers: int, readers: int, prefix: str = PREFIX
) -> dict[str, Any]:
    """Build the host, start both daemons, warm them, load them; every figure in one dict."""
    from vifscope.lab.host import ensure_libvirtd
    from vifscope.lab.synth import SynthHost, plan

    ensure_libvirtd()
    p = plan(domains=domains, nics=NICS, prefix=prefix)
    rss: dict[str, Any] = {"samples": []}
    with ExitStack() as stack:
        host = stack.enter_context(SynthHost(p, ns, daemon=True))
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        audit = ["--audit-log", f"/nonexistent/{ns}.jsonl"]
        exporter, metrics_url = stack.enter_context(daemon(ns, host.uri, "exporter", *audit))
        serve, api_url = stack.enter_context(daemon(ns, host.uri, "serve", *audit))
        warm_in(ns, metrics_url, ("/metrics",))
        warm_in(ns, api_url, API_ROUTES)
        rss["before"] = memory(exporter.pid, serve.pid)
        sampling = sample_every(2.0, exporter.pid, serve.pid, rss["samples"])
        urls, counts = {"metrics": metrics_url, "api": api_url}, {"metrics": scrapers, "api": readers}
        merged = hammer(ns, urls, counts, seconds, len(p.vifs), prefix)
        sampling.set()
        rss["after"] = memory(exporter.pid, serve.pid)
        alive = {"exporter": exporter.poll() is None, "serve": serve.poll() is None}
    return {"vifs": len(p.vifs), "seconds": seconds, "scrapers": scrapers, "readers": readers,
            "kinds": merged, "rss": rss, "alive": alive}  # fmt: skip


def _ms(values: list[float], q: int) -> str:
    if len(values) < 2:
        return "-"
    return f"{statistics.quantiles(values, n=100)[q - 1] * 1000:.0f}"


def latency_row(name: str, values: list[float]) -> dict[str, Any]:
    return {
        "route": name,
        "answers": len(values),
        "p50_ms": _ms(values, 50),
        "p99_ms": _ms(values, 99),
        "max_ms": f"{max(values, default=0) * 1000:.0f}",
    }


def summary(r: dict[str, Any]) -> dict[str, Any]:
    """The figures asserted on and published: per kind requests, errors, degraded answers,
    latency per route, distinct answers; RSS growth per daemon over the run and its second half."""
    out: dict[str, Any] = {}
    for kind, m in r["kinds"].items():
        every = [v for values in m["latencies"].values() for v in values]
        out[kind] = {
            "requests": len(every) + len(m["errors"]),
            "errors": len(m["errors"]),
            "degraded": len(m["degraded"]),
            "first_errors": m["errors"][:5],
            "first_degraded": sorted(set(m["degraded"]))[:5],
            "all": latency_row("all", every),
            "routes": [latency_row(route, values) for route, values in sorted(m["latencies"].items())],
            "distinct": len(m["digests"]),
            "snapshots": len(m["taken"]),
        }
    rss = r["rss"]
    out["rss_growth_mb"] = {k: rss["after"].get(k, 0.0) - v for k, v in rss["before"].items()}
    out["rss_peaks_mb"] = peaks(rss)
    out["rss_second_half_mb"] = {k: second - first for k, (first, second) in out["rss_peaks_mb"].items()}
    out["alive"] = r["alive"]
    return out


def peaks(rss: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Per daemon: (peak RSS over the first half of the run, peak over the second half)."""
    samples: list[dict[str, float]] = [rss["before"], *rss["samples"], rss["after"]]
    half = len(samples) // 2
    return {
        k: (max(x.get(k, 0.0) for x in samples[: half + 1]), max(x.get(k, 0.0) for x in samples[half:]))
        for k in rss["before"]
    }


def failed(s: dict[str, Any]) -> list[str]:
    """Why the run fails its bounds (empty: it passes)."""
    why = [f"{kind}: {s[kind]['errors']} errors" for kind in ("metrics", "api") if s[kind]["errors"]]
    why += [f"{d} died" for d, ok in s["alive"].items() if not ok]
    why += [
        f"{d} peak RSS +{mb:.0f} MB in the second half"
        for d, mb in s["rss_second_half_mb"].items()
        if mb > RSS_BOUND_MB
    ]
    return why


def count(messages: list[str], route: str) -> int:
    return len(messages) if route == "API, all routes" else sum(1 for msg in messages if msg.startswith(f"{route}:"))


def table(r: dict[str, Any], s: dict[str, Any]) -> list[str]:
    """One row per route (errors and degraded answers counted by the route their message names)."""
    rows = ["| route | answers | errors | degraded | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    for kind in ("metrics", "api"):
        m = r["kinds"][kind]
        for row in [*s[kind]["routes"], *([{**s[kind]["all"], "route": "API, all routes"}] if kind == "api" else [])]:
            errors, degraded = (count(m[key], row["route"]) for key in ("errors", "degraded"))
            cells = (row["route"], f"{row['answers']:,}", errors, degraded, row["p50_ms"], row["p99_ms"], row["max_ms"])
            rows.append("| " + " | ".join(map(str, cells)) + " |")
    return rows


def section(r: dict[str, Any], s: dict[str, Any]) -> str:
    m, a, rss = s["metrics"], s["api"], r["rss"]
    memory_line = "; ".join(
        f"{k} {v:.0f} → {first:.0f} / {second:.0f} → {rss['after'].get(k, 0.0):.0f} MB"
        for (k, v), (first, second) in zip(rss["before"].items(), s["rss_peaks_mb"].values(), strict=True)
    )
    worst = max(s["rss_second_half_mb"].values())
    why = failed(s)
    return "\n".join(
        [
            "## Load: parallel scrapes and API readers (bench/load.py, `make soak`)",
            "",
            f"Synthetic host: {r['vifs']:,} vifs ({r['vifs'] // NICS:,} domains x {NICS} NICs in libvirtd's test",
            "driver over its socket, real bridges and held taps in the netns `vs-load`). `vifscope exporter` and",
            "`vifscope serve` with their default flags (checks every 60 s in a worker; 3 s per source) inside the",
            f"namespace; for {r['seconds']:.0f} s, {r['scrapers']} threads loop on GET /metrics",
            f"(`Accept-Encoding: gzip`) and {r['readers']} threads loop over {', '.join(API_ROUTES)};",
            f"clients in processes of {THREADS_PER_CLIENT} threads, in the namespace too. Every distinct answer is",
            "checked: an *error* is a failed request, an HTTP error or a wrong answer; a *degraded* answer is a",
            "complete one saying libvirt or netlink missed its deadline (what the daemons are built to answer",
            f"when a source is slow). {os.cpu_count()} cores shared by the clients, both daemons and libvirtd.",
            "",
            *table(r, s),
            "",
            f"Single-flight: {m['all']['answers']:,} scrapes were served by "
            f"{m['distinct']:,} collections ({m['all']['answers'] / max(1, m['distinct']):.1f} scrapes per collection;",
            "that no two overlap is shown by tests/unit/test_exporter_flight.py). serve took "
            f"{a['snapshots']:,} distinct snapshots for /api/v1/vifs and /api/v1/networks.",
            "RSS (sampled every 2 s) after warm-up → peak in the first / second half of the run → at the end:",
            f"{memory_line}. Stated bound: the second half's peak at most {RSS_BOUND_MB:.0f} MB above the first",
            "half's (a leak keeps growing; fifty answers in flight at once set a high-water mark early, which",
            f"allocator fragmentation moves by tens of MB): largest {worst:+.0f} MB. Both daemons alive at the end: "
            f"{'yes' if all(s['alive'].values()) else 'NO'}. Result: {'; '.join(why) if why else 'pass'}.",
        ]
    )


def write_section(body: str) -> None:
    """Replace (or append) our section between <!-- rel:load --> markers; nothing else is touched."""
    start, end = "<!-- rel:load -->", "<!-- /rel:load -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = RELIABILITY.read_text() if RELIABILITY.exists() else "# vifscope reliability\n\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    RELIABILITY.write_text(text)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--warm":
        warm(sys.argv[2], sys.argv[3:])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        kind, base, threads, seconds, vifs, prefix = sys.argv[2:8]
        print(json.dumps(client(base, kind, int(threads), float(seconds), int(vifs), prefix)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=1250, help="x4 NICs (default 1250: 5,000 vifs)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--scrapers", type=int, default=50)
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--no-write", action="store_true", help="print only, leave RELIABILITY.md alone")
    args = ap.parse_args()
    result = run_load(NS, args.domains, args.seconds, args.scrapers, args.readers)
    s = summary(result)
    print(json.dumps(s, indent=1), file=sys.stderr)
    body = section(result, s)
    print(body)
    if not args.no_write:
        write_section(body)
    return 1 if failed(s) else 0


if __name__ == "__main__":
    sys.exit(main())
