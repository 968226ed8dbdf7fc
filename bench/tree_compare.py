"""status, doctor and one exporter scrape at scale, this tree against another revision, side by
side on one host.

Why: on this 2-core VM absolute times drift by up to 30 % between runs (and with other work on
the machine), so "within noise of last session's figures" is judged by timing both trees on the
same synthetic host (bench/scale.py's: domains in libvirtd's test driver, real bridges and taps
in the netns vs-scale), runs interleaved: floor, this tree, the other, round after round.
Run as root: ``.venv/bin/python bench/tree_compare.py --baseline REV [--vifs 5000]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import checkout, precompile, publish, run_timed, short_rev
from scale import FLOOR, NICS, NS, check_verdicts, in_ns

from vifscope.lab.host import ensure_libvirtd
from vifscope.lab.synth import SynthHost, plan

ROOT = Path(__file__).resolve().parent.parent
# What is timed on both trees. ``exporter --once --no-checks``: process start, one collection
# (cold: every domain's XML) and the exposition of 5,000 vifs -- a scrape's work plus start-up.
COMMANDS: dict[str, tuple[str, ...]] = {
    "status": ("status", "--json"),
    "doctor": ("doctor", "--json"),
    "exporter --once": ("exporter", "--once", "--no-checks"),
}
# Runs the entry module whatever the revision calls it (python -m vifscope).
LAUNCH = "import sys, runpy; sys.argv[0] = 'vifscope'; runpy.run_module('vifscope', run_name='__main__')"


def command(src: Path, uri: str, *args: str) -> list[str]:
    return in_ns("env", f"PYTHONPATH={src}", sys.executable, "-c", LAUNCH, "-c", uri, *args)


def rounds(cmds: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for cmd in cmds.values():  # warm: page cache, libvirtd's own caches
        run_timed(cmd)
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(run_timed(cmd).seconds)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--vifs", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    precompile()
    ensure_libvirtd()
    rev, head = short_rev(args.baseline), short_rev("HEAD")
    p = plan(domains=args.vifs // NICS, nics=NICS)
    load_before = os.getloadavg()[0]
    with checkout(rev) as old_src, SynthHost(p, NS, daemon=True) as host:
        new_src = ROOT / "src"
        for src in (old_src, new_src):
            out = run_timed(command(src, host.uri, "status", "--json"))
            assert check_verdicts(p, out.stdout)[0], f"wrong verdicts from {src}"
        cmds = {"floor": in_ns(sys.executable, "-c", FLOOR, host.uri)}
        for name, argv in COMMANDS.items():
            cmds[f"{name} {rev}"] = command(old_src, host.uri, *argv)
            cmds[f"{name} {head}"] = command(new_src, host.uri, *argv)
        times = rounds(cmds, args.runs)
    floor = statistics.median(times["floor"])
    lines = ["| command | median s | min s | max s | / floor |", "|---|---:|---:|---:|---:|"]
    for name, ts in times.items():
        med = statistics.median(ts)
        lines.append(f"| {name} | {med:.3f} | {min(ts):.3f} | {max(ts):.3f} | {med / floor:.2f}x |")
    text = (
        f"## This tree against {rev}: status, doctor, exporter at {len(p.vifs):,} vifs (bench/tree_compare.py)\n\n"
        f"The scale section's synthetic host; {args.runs} interleaved rounds of floor, then each command on "
        f"{rev} and on {head} (same venv, the other tree first on PYTHONPATH). 1-minute load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after.\n\n" + "\n".join(lines) + "\n"
    )
    publish("tree-compare", text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
