"""The long fuzz run (``make fuzz``): structure-aware mutations of the libvirt corpus and the
golden cases' captured dumps through every parser, and a share of them through the whole
pipeline (snapshot -> bind -> checks -> every report), on every core, bounded in inputs and
in time. Counts, crashes and the slowest input per parser go to RELIABILITY.md.

Input ``i`` of a target is mutated from ``random.Random(f"{target}:{i}")``: a crash is replayed
with ``bench/fuzz.py --replay TARGET:I``. The quick deterministic slice is tests/fuzz/.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from benchlib import write_section  # noqa: E402

from tests.fuzz.mutate import BILLION_LAUGHS  # noqa: E402
from tests.fuzz.pipeline import Worker, cases  # noqa: E402
from tests.fuzz.targets import TARGETS, Target, one_megabyte_domain  # noqa: E402
from vifscope.model import DomainState  # noqa: E402
from vifscope.sources.libvirt.domxml import DomainXmlError, parse_domain  # noqa: E402

RELIABILITY = ROOT / "RELIABILITY.md"
BY_NAME = {t.name: t for t in TARGETS}
PIPELINE = "pipeline"
CHUNK = {PIPELINE: 100}
DEFAULT_CHUNK = 2000


@dataclass
class Stats:
    inputs: int = 0
    rejected: int = 0  # a documented error
    skipped: int = 0  # pipeline only: an input the golden loader cannot carry
    crashes: list[tuple[int, str]] = field(default_factory=list)
    slowest: tuple[float, int] = (0.0, -1)
    seconds: float = 0.0

    def add(self, other: Stats) -> None:
        self.inputs += other.inputs
        self.rejected += other.rejected
        self.skipped += other.skipped
        self.crashes.extend(other.crashes)
        self.slowest = max(self.slowest, other.slowest)
        self.seconds += other.seconds


def mutated(target: Target, i: int) -> object:
    rng = random.Random(f"{target.name}:{i}")
    seeds = target.seeds()
    return target.mutate(rng, seeds[rng.randrange(len(seeds))])


def _crash(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}: {str(exc)[:160]}"


@functools.cache
def workers(root: str) -> tuple[Worker, ...]:
    """This process's flattened golden cases, in a directory of its own under ``root``."""
    return tuple(Worker(c, Path(root) / str(os.getpid())) for c in cases())


def run_parser(name: str, start: int, count: int, deadline: float) -> Stats:
    target, st = BY_NAME[name], Stats()
    for i in range(start, start + count):
        if time.time() > deadline:
            break
        data = mutated(target, i)
        t0 = time.perf_counter()
        try:
            target.run(data)
        except target.allowed:
            st.rejected += 1
        except Exception as exc:
            st.crashes.append((i, _crash(exc)))
        took = time.perf_counter() - t0
        st.inputs, st.seconds, st.slowest = st.inputs + 1, st.seconds + took, max(st.slowest, (took, i))
    return st


def run_pipeline(start: int, count: int, deadline: float, root: str) -> Stats:
    st = Stats()
    for i in range(start, start + count):
        if time.time() > deadline:
            break
        rng = random.Random(f"{PIPELINE}:{i}")
        worker = workers(root)[rng.randrange(len(workers(root)))]
        t0 = time.perf_counter()
        try:
            result = worker.one(rng).result
            st.rejected += result == "rejected"
            st.skipped += result == "skipped"
        except Exception as exc:
            st.crashes.append((i, f"{worker.dir.name}: {_crash(exc)}"))
        took = time.perf_counter() - t0
        st.inputs, st.seconds, st.slowest = st.inputs + 1, st.seconds + took, max(st.slowest, (took, i))
    return st


def run_chunk(task: tuple[str, int, int, float, str]) -> tuple[str, Stats]:
    name, start, count, deadline, root = task
    if name == PIPELINE:
        return name, run_pipeline(start, count, deadline, root)
    return name, run_parser(name, start, count, deadline)


def plan(total: int, pipeline: int) -> Iterator[tuple[str, int, int]]:
    """Chunks interleaved over the targets, so a run cut short by time is spread over all."""
    per_parser = (total - pipeline) // len(TARGETS)
    quota = {t.name: per_parser for t in TARGETS} | {PIPELINE: pipeline}
    done = dict.fromkeys(quota, 0)
    while any(done[n] < quota[n] for n in quota):
        for name in quota:
            size = min(CHUNK.get(name, DEFAULT_CHUNK), quota[name] - done[name])
            if size > 0:
                yield name, done[name], size
                done[name] += size


def limits() -> str:
    """How parse time grows: a 1 MB domain, and how fast an entity bomb is refused."""
    big = one_megabyte_domain()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        vifs = parse_domain(big, DomainState.RUNNING).vifs
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    try:
        parse_domain(BILLION_LAUGHS + "<domain><name>&l9;</name></domain>", DomainState.RUNNING)
        bomb = "parsed (!)"
    except DomainXmlError as exc:
        bomb = f"refused in {(time.perf_counter() - t0) * 1000:.2f} ms: `{exc}`"
    return (
        f"- 1 MB domain XML ({len(big) / 1e6:.2f} MB, {len(vifs):,} interfaces, copies of a corpus domain's): "
        f"parsed in {statistics.median(times):.3f} s (median of 5; with the interface extras doctor reads)\n"
        f"- billion laughs (10^9 expansions declared): {bomb}\n"
    )


def retime(name: str, index: int, root: str) -> float:
    """The run's slowest input of a target parsed again, alone (median of 3): in the run a
    garbage collection or the other process can make any input look slow."""
    if index < 0:
        return 0.0
    times = []
    for _ in range(3):
        st = run_chunk((name, index, 1, float("inf"), root))[1]
        times.append(st.seconds)
    return statistics.median(times)


def report(stats: dict[str, Stats], wall: float, args: argparse.Namespace, root: str) -> dict[str, str]:
    total = sum(s.inputs for s in stats.values())
    crashes = sum(len(s.crashes) for s in stats.values())
    rate = total / wall if wall else 0.0
    whole = f"{args.inputs / rate / 60:.0f} min" if rate else "?"
    rows = [
        "| input | inputs | refused (typed error) | crashes | mean | slowest in the run | that input alone | seed |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in stats.items():
        mean = s.seconds / s.inputs * 1000 if s.inputs else 0.0
        alone = retime(name, s.slowest[1], root) * 1000
        rows.append(
            f"| {name} | {s.inputs:,} | {s.rejected:,} | {len(s.crashes)} | {mean:.2f} ms | "
            f"{s.slowest[0] * 1000:.1f} ms | {alone:.1f} ms | `{name}:{s.slowest[1]}` |"
        )
    summary = (
        f"{total:,} inputs of {args.inputs:,} planned in {wall / 60:.1f} min on {args.workers} processes "
        f"({platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, shared with "
        f"other work): {rate:,.0f} inputs/s, **{crashes} crashes**. "
        + (f"At this rate {args.inputs:,} inputs take {whole}." if total < args.inputs else "")
        + f"\nPipeline inputs (one raw file of a golden case mutated, then every report): "
        f"{stats[PIPELINE].inputs:,}, of which {stats[PIPELINE].skipped:,} skipped (the test loader cannot carry them)."
    )
    found = [f"- `{name}:{i}` {what}" for name, s in stats.items() for i, what in s.crashes[:5]]
    return {
        "summary": summary,
        "parsers": "\n".join(rows),
        "crashes": "\n".join(found) or "None in this run.",
        "limits": limits(),
    }


def replay(spec: str, root: str) -> int:
    name, _, index = spec.partition(":")
    if name != PIPELINE:
        print(repr(mutated(BY_NAME[name], int(index)))[:2000])
    st = run_chunk((name, int(index), 1, float("inf"), root))[1]
    print(st.crashes or "no crash")
    return 1 if st.crashes else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=1_000_000, help="inputs in all (default 1,000,000)")
    ap.add_argument("--pipeline", type=int, default=20_000, help="of them, through the whole pipeline")
    ap.add_argument("--minutes", type=float, default=20.0, help="stop after this long, whatever the count")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-write", action="store_true", help="print, do not update RELIABILITY.md")
    ap.add_argument("--replay", metavar="TARGET:I", help="run one input again and show it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vs-fuzz-") as root:
        return replay(args.replay, root) if args.replay else run(args, root)


def run(args: argparse.Namespace, root: str) -> int:
    start = time.time()
    deadline = start + args.minutes * 60
    stats = {t.name: Stats() for t in TARGETS} | {PIPELINE: Stats()}
    tasks = [(n, s, c, deadline, root) for n, s, c in plan(args.inputs, args.pipeline)]
    with multiprocessing.Pool(args.workers) as pool:
        for done, (name, st) in enumerate(pool.imap_unordered(run_chunk, tasks), 1):
            stats[name].add(st)
            if done % 50 == 0:
                print(f"{sum(s.inputs for s in stats.values()):,} inputs, {time.time() - start:.0f} s", flush=True)
    sections = report(stats, time.time() - start, args, root)
    for name, body in sections.items():
        print(f"## {name}\n{body}\n")
        if not args.no_write:
            write_section(name, body, path=RELIABILITY, tag="rel")
    return 1 if any(s.crashes for s in stats.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
