"""The client side of bench/outage.py: runs inside the benchmark's network namespace.

``outage_probe.py METRICS_URL API_URL PERIOD DEADLINE``: one thread scrapes /metrics (with
Prometheus' ``X-Prometheus-Scrape-Timeout-Seconds: DEADLINE`` header), one reads
/api/v1/vifs, each every PERIOD seconds, until stdin closes. Every answer (or failure) is one
JSON line on stdout: kind, monotonic start/end (CLOCK_MONOTONIC is one clock for the whole
host, so the driver compares these with its own), HTTP status, and which sources the answer
says are up (metrics: ``vifscope_source_up``) or failed (API: ``source_errors``).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

UP = re.compile(rb'^vifscope_source_up\{source="([^"]+)"\} (\S+)$', re.M)
CLIENT_TIMEOUT = 120.0  # far past any deadline: a hung daemon shows up as a slow answer, not a gap
LOCK = threading.Lock()


def emit(doc: dict[str, Any]) -> None:
    with LOCK:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()


def get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=CLIENT_TIMEOUT) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def judge(kind: str, status: int, body: bytes) -> dict[str, Any]:
    if kind == "metrics":
        up = {m[0].decode(): float(m[1]) == 1.0 for m in UP.findall(body)}
        return {"status": status, "up": up}
    doc = json.loads(body)
    down = sorted({str(e.get("source")) for e in doc.get("source_errors", ())})
    return {"status": status, "down": down, "vifs": len(doc.get("vifs", ()))}


def loop(kind: str, url: str, headers: dict[str, str], period: float, stop: threading.Event) -> None:
    while not stop.is_set():
        start = time.monotonic()
        try:
            status, body = get(url, headers)
            doc = judge(kind, status, body)
        except (OSError, ValueError) as exc:  # refused, reset, timed out, not JSON: a failed answer
            doc = {"error": f"{type(exc).__name__}: {exc}"}
        end = time.monotonic()
        emit({"kind": kind, "start": start, "end": end, **doc})
        stop.wait(max(0.0, period - (end - start)))


def main() -> int:
    metrics, api, period, deadline = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=loop,
            args=("metrics", metrics + "/metrics", {"X-Prometheus-Scrape-Timeout-Seconds": deadline}, period, stop),
            daemon=True,
        ),
        threading.Thread(target=loop, args=("api", api + "/api/v1/vifs", {}, period, stop), daemon=True),
    ]
    for t in threads:
        t.start()
    emit({"kind": "ready", "start": time.monotonic()})
    sys.stdin.read()  # until the driver closes our stdin
    stop.set()
    for t in threads:
        t.join(timeout=CLIENT_TIMEOUT + 5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
