"""Shared bits for bench/ scripts: timing child processes, medians, BENCHMARKS.md sections."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


@dataclass(frozen=True)
class Run:
    seconds: float
    max_rss_kb: int
    returncode: int
    stdout: bytes


def precompile() -> None:
    """Byte-compile vifscope as scripts/setup.sh does, so no timed run compiles sources (an
    edit since set-up, with PYTHONDONTWRITEBYTECODE set, would add ~40 ms to every run)."""
    src = Path(__file__).resolve().parent.parent / "src" / "vifscope"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True, capture_output=True)


def run_timed(cmd: Sequence[str]) -> Run:
    """Wall time and peak RSS of one child (os.wait4's rusage: the exec'd program itself)."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(elapsed, usage.ru_maxrss, proc.returncode, out)


def median_runs(cmd: Sequence[str], n: int = 5) -> tuple[float, int, Run]:
    """Median wall seconds and median peak RSS (KB) of n runs, plus the last run."""
    runs = [run_timed(cmd) for _ in range(n)]
    return (
        statistics.median(r.seconds for r in runs),
        int(statistics.median(r.max_rss_kb for r in runs)),
        runs[-1],
    )


def write_section(name: str, body: str, *, path: Path = BENCHMARKS, tag: str = "bench") -> None:
    """Replace (or append) the section between <!-- TAG:NAME --> markers in ``path``
    (BENCHMARKS.md with ``bench:`` markers unless told otherwise: RELIABILITY.md uses ``rel:``)."""
    start, end = f"<!-- {tag}:{name} -->", f"<!-- /{tag}:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else f"# vifscope {path.stem.lower()}\n\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    path.write_text(text)


def short_rev(rev: str) -> str:
    root = BENCHMARKS.parent
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """Another revision's ``src`` in a temporary git worktree (byte-compiled), to put first on
    PYTHONPATH beside this tree's: the same venv and interpreter run both. Removed afterwards."""
    root = BENCHMARKS.parent
    with tempfile.TemporaryDirectory(prefix="vs-bench-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), rev], cwd=root, check=True)
        try:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "src" / "vifscope")], check=True)
            yield tree / "src"
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root, check=False)


def publish(section: str, text: str, *, write: bool = True) -> None:
    """Print a section and, unless told not to, put it into BENCHMARKS.md."""
    print(text)
    if write:
        write_section(section, text)
