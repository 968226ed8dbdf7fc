"""Start-up cost of a one-shot command: ``vifscope -c test:///default status --json`` for this
tree against another revision's, runs interleaved so both see the same machine state.

libvirt's in-process test driver answers in microseconds, so the wall time is almost all
interpreter start, imports and argument parsing: what a package reshaping could make worse.
The other revision is checked out into a temporary git worktree and put first on PYTHONPATH
(same venv, same interpreter); both trees are byte-compiled first, as scripts/setup.sh does.
Run: ``.venv/bin/python bench/startup.py --baseline REV``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import checkout, publish, short_rev

ROOT = Path(__file__).resolve().parent.parent
ARGV = ["-c", "test:///default", "status", "--json"]
# Run the command as the console script does, whatever the revision calls its entry module.
LAUNCH = "import sys, runpy; sys.argv[0] = 'vifscope'; runpy.run_module('vifscope', run_name='__main__')"


def one_run(src: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(src))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", LAUNCH, *ARGV], env=env, stdout=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # test:///default has a vif with no link: 1 is its verdict
        raise SystemExit(f"status failed under {src} (exit {proc.returncode})")
    return elapsed


def own_import_ms(src: Path) -> tuple[int, float]:
    """vifscope modules imported, and the sum of their own (self) import times, from -X importtime."""
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", LAUNCH, *ARGV], env=env, capture_output=True, text=True
    ).stderr.splitlines()
    mine = [line for line in out if line.rstrip().split("|")[-1].strip().startswith("vifscope")]
    return len(mine), sum(int(line.split("|")[0].split(":")[1]) for line in mine) / 1000


def measure(trees: dict[str, Path], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in trees}
    for src in trees.values():  # a first run each: page cache, .pyc
        one_run(src)
    for _ in range(runs):
        for name, src in trees.items():
            times[name].append(one_run(src))
    return times


def table(trees: dict[str, Path], times: dict[str, list[float]]) -> str:
    rows = [
        "| tree | median ms | p10 ms | p90 ms | vifscope modules imported | their self import time ms (median of 5) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, src in trees.items():
        counts = [own_import_ms(src) for _ in range(5)]
        q = statistics.quantiles(times[name], n=10)
        rows.append(
            f"| {name} | {statistics.median(times[name]) * 1000:.1f} | {q[0] * 1000:.1f} | {q[-1] * 1000:.1f} "
            f"| {counts[0][0]} | {statistics.median(c[1] for c in counts):.1f} |"
        )
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="git revision to compare with (e.g. the commit before a move)")
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rev, head = short_rev(args.baseline), short_rev("HEAD")
    with checkout(rev) as old_src:
        trees = {f"{rev} (baseline)": old_src, f"{head} (this tree)": ROOT / "src"}
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "vifscope")], check=True)
        body = table(trees, measure(trees, args.runs))
    text = (
        "## Start-up: `vifscope -c test:///default status --json` (bench/startup.py)\n\n"
        f"{args.runs} runs each, interleaved, same venv; the test driver answers in-process, so this is\n"
        "interpreter start + imports + parsing. Self import time: the sum over vifscope's own modules\n"
        "of `python -X importtime`'s self column.\n\n" + body + "\n"
    )
    publish("startup", text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
