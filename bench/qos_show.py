"""``vifscope qos show`` at scale: the synthetic host of bench/scale.py (in-process test-driver
node file, real bridges and held taps in the netns vs-q-scale), with ``<bandwidth>`` declared on
every ``--shaped-every``-th vif and libvirt's htb layout applied for real on its tap (one in
five of them at twice the declared rate: drift), and an htb nobody declared on every 100th
other tap (undeclared). Times, median of --runs runs, side by side:

* ``vifscope qos --json`` (one qdisc dump, then one class dump per shaped tap on one netlink
  socket) and ``vifscope status --json`` on the same host;
* the per-tap alternative: ``tc class show dev TAP`` per shaped tap, each its own process,
  timed on a sample and extrapolated.

Also checks every verdict against the plan. Run as root: ``.venv/bin/python bench/qos_show.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import median_runs, precompile, write_section

from vifscope.lab.synth import SynthHost, plan

NS = "vs-q-scale"
# In the netns: the kernel side ``qos`` adds to status, alone (median of 5 in one process).
TC_READ = """
import statistics, time
from vifscope.sources.kernel.tcshaping import read_tc
runs = []
for _ in range(5):
    t0 = time.perf_counter(); qdiscs, tc = read_tc(); runs.append(time.perf_counter() - t0)
print(statistics.median(runs), len(qdiscs), len(tc.classes))
"""
BANDWIDTH = "<bandwidth><inbound average='1000' peak='2000' burst='256'/></bandwidth>"


def in_ns(*cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *cmd]


def layout(taps: list[tuple[str, bool]], shaped_every: int) -> tuple[dict[str, str], list[str], set[str]]:
    """The expected verdict of each running tap, the tc batch that makes it so, the declaring taps."""
    expect, batch, shaped = {}, [], set()
    for n, (tap, running) in enumerate(taps):
        declared, drift = n % shaped_every == 0, n % (shaped_every * 5) == 0
        by_hand = not declared and n % 100 == 1
        if declared:
            shaped.add(tap)
        if declared or by_hand:
            rate = "2000kbps ceil 4000kbps" if drift or by_hand else "1000kbps ceil 2000kbps"
            batch += [f"qdisc add dev {tap} root handle 1: htb default 1",
                      f"class add dev {tap} parent 1: classid 1:1 htb rate {rate} burst 256kb"]  # fmt: skip
        if running:
            expect[tap] = "drift" if drift else "enforced" if declared else "undeclared" if by_hand else "none"
    return expect, batch, shaped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vifs", type=int, default=5000)
    ap.add_argument("--shaped-every", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sample", type=int, default=50, help="taps the per-tap tc loop is timed on")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = ap.parse_args()
    precompile()
    load_before = os.getloadavg()[0]
    p = plan(args.vifs // 4, 4, prefix="vs-q-s")
    held = {v.tap for v in p.vifs if v.fault != "missing"}
    taps = [(v.tap, v.expect != "inactive") for v in p.vifs if v.tap in held]
    expect, batch, shaped = layout(taps, args.shaped_every)
    with SynthHost(p, NS) as host:
        text = host.node_file.read_text()
        for tap in shaped:
            text = text.replace(f"<target dev='{tap}'/>", f"{BANDWIDTH}<target dev='{tap}'/>")
        host.node_file.write_text(text)
        tc_file = host.dir / "tc.batch"
        tc_file.write_text("\n".join(batch) + "\n")
        subprocess.run(["tc", "-n", NS, "-b", str(tc_file)], check=True, capture_output=True)
        qos_s, qos_rss, last = median_runs(
            in_ns(sys.executable, "-m", "vifscope", "-c", host.uri, "qos", "--json"), args.runs
        )
        status_s, _, _ = median_runs(
            in_ns(sys.executable, "-m", "vifscope", "-c", host.uri, "status", "--json"), args.runs
        )
        tc_out = subprocess.run(in_ns(sys.executable, "-c", TC_READ), capture_output=True, text=True, check=True)
        tc_s, n_qdiscs, n_classes = tc_out.stdout.split()
        doc = json.loads(last.stdout)
        got = {v["target"]: v["verdict"] for v in doc["vifs"] if v["verdict"] != "inactive"}
        exact = set(expect) <= set(got) and all(v == expect.get(t, "none") for t, v in got.items())
        sample = sorted(t for t in shaped)[: args.sample]
        t0 = time.perf_counter()
        for tap in sample:
            subprocess.run(in_ns("tc", "class", "show", "dev", tap), capture_output=True, check=True)
        loop = (time.perf_counter() - t0) / len(sample) * len(shaped)
    counts: dict[str, int] = {}
    for v in doc["vifs"]:
        counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
    row = (
        f"| {args.vifs} | {len(shaped)} | {qos_s:.3f} | {qos_rss // 1024} | {status_s:.3f} | {qos_s / status_s:.2f}x "
        f"| {float(tc_s) * 1000:.0f} ({n_qdiscs} qdiscs, {n_classes} classes) "
        f"| {loop:.1f} | {loop / qos_s:.0f}x | {exact} |"
    )
    head = (
        "## `qos show` at scale (bench/qos_show.py)\n\n"
        f"bench/scale.py's synthetic host (test-driver node file, held taps in a netns), `<bandwidth>` on every "
        f"{args.shaped_every}th vif with libvirt's htb class applied for real on its tap (a fifth of them at another "
        "rate), an undeclared htb on every 100th other tap. `tc loop`: `tc class show dev TAP` per shaped tap, each "
        f"its own process, timed on {len(sample)} taps and extrapolated. "
        f"Verdicts: {json.dumps(counts, sort_keys=True)}.\n\n"
        "| vifs | shaped taps | qos s | qos RSS MB | status s | qos/status | tc read ms (in-process) "
        "| tc loop s (extrapolated) | speed-up | verdicts exact |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    body = (
        f"{head}\n{row}\n\nMedian of {args.runs} runs each; process wall time, peak RSS from wait4(). 1-minute load "
        f"average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other sessions share the 2 cores: read "
        "qos/status, measured side by side)."
    )
    print(body)
    if args.write:
        write_section("qos", body)


if __name__ == "__main__":
    main()
