"""Benchmark: raw RTMGRP_LINK socket (vifscope.watch.nlmon) vs pyroute2's IPRoute().bind().

Run as root: ``.venv/bin/python bench/netlink_monitor.py [--events N] [--pyroute2-python PY]``.
In a private netns (vs-w-nlbench) it creates one bridge and flips it up/down N times with
one ``ip -batch``; a receiver process (one per implementation) counts link events until it
has seen them all and prints its CPU time. pyroute2 is not a vifscope dependency: pass a
Python that has it (e.g. a scratch venv) to include it. Both get an 8 MiB receive
buffer (SO_RCVBUFFORCE) and only RTMGRP_LINK: with pyroute2's defaults (SO_RCVBUF, capped by
net.core.rmem_max, and many groups) its receiver died with ENOBUFS at 10,000 events. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import write_section

NS = "vs-w-nlbench"

RAW_RECEIVER = r"""
import json, resource, sys, time
from vifscope.watch.nlmon import LinkMonitor
want = int(sys.argv[1]); mon = LinkMonitor(); print("ready", flush=True)
r0 = resource.getrusage(resource.RUSAGE_SELF); seen, first = 0, None
while seen < want:
    got = mon.read()
    first = first or time.monotonic()
    seen += sum(1 for e in got if e.name == "vs-nlb0" and not e.bridge_port_msg) if isinstance(got, list) else 0
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime - r0.ru_utime - r0.ru_stime
print(json.dumps({"events": seen, "cpu_s": cpu, "end": time.monotonic()}))
"""

PYROUTE2_RECEIVER = r"""
import json, resource, sys, time
from pyroute2 import IPRoute
want = int(sys.argv[1]); ipr = IPRoute(); ipr.setsockopt(1, 33, 8 << 20); ipr.bind(groups=1); print("ready", flush=True)
r0 = resource.getrusage(resource.RUSAGE_SELF); seen = 0
while seen < want:
    try:
        msgs = ipr.get()
    except OSError as exc:
        print(json.dumps({"error": str(exc), "events": seen})); sys.exit(0)
    for msg in msgs:
        if msg.get("event") in ("RTM_NEWLINK", "RTM_DELLINK") and msg.get_attr("IFLA_IFNAME") == "vs-nlb0" \
                and msg["family"] != 7:
            seen += 1
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime - r0.ru_utime - r0.ru_stime
print(json.dumps({"events": seen, "cpu_s": cpu, "end": time.monotonic()}))
"""


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def run_one(python: str, code: str, flips: int) -> dict[str, Any]:
    base = [python, "-c", code, str(flips * 2)]
    recv = subprocess.Popen(["ip", "netns", "exec", NS, *base], stdout=subprocess.PIPE, text=True)
    assert recv.stdout is not None
    assert recv.stdout.readline().strip() == "ready"
    with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as batch:
        for _ in range(flips):
            batch.write("link set vs-nlb0 up\nlink set vs-nlb0 down\n")
    start = time.monotonic()
    sh("ip", "-n", NS, "-batch", batch.name)
    sent = time.monotonic()
    out = json.loads(recv.stdout.readline())
    recv.wait(timeout=60)
    Path(batch.name).unlink()
    if "error" in out:
        return {"events": out["events"], "error": out["error"]}
    return {"events": out["events"], "cpu_s": out["cpu_s"], "send_s": sent - start, "drain_s": out["end"] - start}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="+", default=[500, 5000], help="up/down flips (2 events each)")
    ap.add_argument("--pyroute2-python", default=None, help="a python with pyroute2 installed")
    args = ap.parse_args()
    impls = [("raw socket (vifscope)", sys.executable, RAW_RECEIVER)]
    if args.pyroute2_python:
        impls.append(("pyroute2 0.9 IPRoute.bind()", args.pyroute2_python, PYROUTE2_RECEIVER))
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "-n", NS, "link", "add", "vs-nlb0", "type", "bridge")
        rows = [measure(name, python, code, n) for n in args.events for name, python, code in impls]
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=False)
    text = section(rows)
    print(text)
    write_section("watch-netlink", text)


def measure(name: str, python: str, code: str, flips: int) -> str:
    r = run_one(python, code, flips)
    if "error" in r:
        return f"| {name} | {flips * 2} | FAILED after {r['events']} events: {r['error']} | |"
    per = r["cpu_s"] / r["events"] * 1e6
    return f"| {name} | {r['events']:.0f} | {r['cpu_s']:.3f} s ({per:.1f} us/event) | {r['drain_s']:.3f} s |"


def section(rows: list[str]) -> str:
    return "\n".join(
        [
            "## watch: netlink link monitor (`bench/netlink_monitor.py`)",
            "",
            "Link up/down events from one `ip -batch` in a private netns; receiver CPU counted after start-up.",
            "iproute2 6.1's `ip -j monitor link` ignores `-j` (prints text), so it was not a candidate.",
            "",
            "| receiver | events | CPU | all received after |",
            "|---|---|---|---|",
            *rows,
        ]
    )


if __name__ == "__main__":
    main()
