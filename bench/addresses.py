"""What guest addresses cost ``status --json`` at 5,000 vifs: this tree against a revision
without them, side by side on one synthetic host.

The host is bench/scale.py's layout (vifscope.lab.synth) under its own names (netns vs-g-scale,
prefix vs-g-s) in node-file mode, so it never touches libvirtd's shared test driver: first as
built (no neighbour entries: each vif lists only its EUI-64 link-local), then with one permanent
neighbour entry per running, unbroken vif's MAC on its bridge (what a host routing for its guests
holds): the worst case, where nearly every vif has an observed address. Timed, interleaved round
after round: ``status --json`` on both trees; then in one process (best of 15): bind(), the
report dict and its JSON encoding.
Run as root: ``.venv/bin/python bench/addresses.py --baseline REV [--vifs 5000] [--runs 9]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import checkout, precompile, publish, run_timed, short_rev
from scale import NICS

from vifscope.lab.synth import SynthHost, SynthPlan, plan

ROOT = Path(__file__).resolve().parent.parent
NS = "vs-g-scale"
LAUNCH = "import sys, runpy; sys.argv[0] = 'vifscope'; runpy.run_module('vifscope', run_name='__main__')"
# In-process costs, the same code on both trees (only names both have).
PARTS = r"""
import json, sys, time
from vifscope.bind.join import bind
from vifscope.report import documents as report
from vifscope.sources.snapshot import take_snapshot
snap = take_snapshot(sys.argv[1])
def best(f, n=15):
    out = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); out = min(out, time.perf_counter() - t)
    return out
b = bind(snap)
doc = report.status_report(snap, b)
import vifscope.sources.snapshot as S
dump = getattr(S, "read_neighbors_guarded", None)  # the neighbour dump status now takes (kernel child)
print(json.dumps({"bind": best(lambda: bind(snap)), "report": best(lambda: report.status_report(snap, b)),
                  "json": best(lambda: json.dumps(doc, ensure_ascii=False)),
                  "neigh": best(lambda: dump([])) if dump else None}))
"""


def in_ns(src: Path, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NS, "env", f"PYTHONPATH={src}", sys.executable, *cmd]


def neighbour_batch(p: SynthPlan) -> str:
    """``ip -batch`` lines: each running, unbroken vif's MAC seen at a unique address on its bridge."""
    lines, index = [], {d: i for i, d in enumerate(p.domains)}
    for n, v in enumerate(p.vifs):
        if v.fault:
            continue
        i = index[v.domain]  # synth's MAC scheme (domain_xmls)
        mac = f"52:54:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:{v.index:02x}"
        lines.append(f"neigh add 10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255} lladdr {mac} dev {v.bridge} nud permanent")
    return "\n".join(lines) + "\n"


def _least(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.0f}"


def scenario(label: str, uri: str, trees: dict[str, Path], runs: int) -> list[str]:
    """Table rows: each tree's status --json (interleaved rounds) and in-process costs."""
    cmds = {name: in_ns(src, "-c", LAUNCH, "-c", uri, "status", "--json") for name, src in trees.items()}
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for cmd in cmds.values():
        run_timed(cmd)  # warm
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(run_timed(cmd).seconds)
    parts: dict[str, list[dict[str, float | None]]] = {name: [] for name in trees}
    for _ in range(3):  # interleaved too: a busy spell of the machine lands on both trees
        for name, src in trees.items():
            out = subprocess.run(in_ns(src, "-c", PARTS, uri), capture_output=True, check=True).stdout
            parts[name].append(json.loads(out))
    rows = []
    for name in trees:
        pt = {key: _least(p[key] for p in parts[name]) for key in parts[name][0]}
        ts = times[name]
        rows.append(
            f"| {label} | {name} | {statistics.median(ts):.3f} | {min(ts):.3f} | {max(ts):.3f} "
            f"| {_ms(pt['bind'])} | {_ms(pt['report'])} | {_ms(pt['json'])} | {_ms(pt['neigh'])} |"
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--vifs", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    precompile()
    rev, head = short_rev(args.baseline), short_rev("HEAD")
    p = plan(domains=args.vifs // NICS, nics=NICS, prefix="vs-g-s")
    load_before = os.getloadavg()[0]
    rows: list[str] = []
    with checkout(rev) as old, SynthHost(p, NS) as host:
        new = ROOT / "src"
        rows += scenario("no neighbour entries", host.uri, {rev: old, head: new}, args.runs)
        batch = host.dir / "neigh.batch"
        batch.write_text(neighbour_batch(p))
        subprocess.run(["ip", "-n", NS, "-batch", str(batch)], check=True)
        doc = json.loads(run_timed(in_ns(new, "-c", LAUNCH, "-c", host.uri, "status", "--json")).stdout)
        seen = sum(1 for v in doc["vifs"] if any(a["source"] == "arp" for a in v["addresses"]))
        rows += scenario(f"{seen:,} vifs' MACs in the neighbour table", host.uri, {rev: old, head: new}, args.runs)
    head_row = (
        "| neighbours | tree | status --json median s | min s | max s | bind ms | report ms | JSON ms "
        "| neighbour dump ms |"
    )
    text = (
        f"## Guest addresses: status --json at {len(p.vifs):,} vifs, {head} against {rev} (bench/addresses.py)\n\n"
        f"The synthetic host in node-file mode, first as built, then with each running, unbroken vif's MAC in "
        f"the neighbour table on its bridge (each vif then lists an `arp` address besides its `eui64` one: the "
        f"worst case). {args.runs} interleaved rounds; bind / report / JSON: best of 3 x 15 in one process: what "
        f"the addresses cost, the rest of a status being the same code on both trees (with other work on the "
        f"machine the whole command's spread exceeds that); the neighbour dump runs in the forked kernel-side "
        f"child, beside libvirt's read. "
        f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.\n\n"
        + "\n".join([head_row, "|---|---|---:|---:|---:|---:|---:|---:|---:|", *rows])
        + "\n"
    )
    publish("guest-addresses", text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
