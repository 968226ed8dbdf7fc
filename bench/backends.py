"""Cost of the vhost-user backend facts on this host: ``read_backends`` for N vhostuser vifs whose
sockets this process listens on (half of them with a connected peer), then ``bind``.

The read is one /proc/net/unix parse, one lstat per path and one pass over every process's
/proc/PID/fd (to name the listeners' holders): it grows with the number of processes and open
fds on the host, not only with N. Median of 5 after one warm-up; milliseconds.
Run: ``.venv/bin/python bench/backends.py [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import publish

from vifscope.bind.join import bind
from vifscope.model import DeclaredVif, DomainState, HostSnapshot
from vifscope.sources.backends import read_backends

SIZES = (10, 100, 1000)


def _vifs(paths: list[Path]) -> list[DeclaredVif]:
    return [
        DeclaredVif(f"vs-bench-{i // 4}", "u", DomainState.RUNNING, i % 4, "vhostuser", f"52:54:00:b0:{i // 256:02x}:"
                    f"{i % 256:02x}", source=str(p), source_mode="client")
        for i, p in enumerate(paths)
    ]  # fmt: skip


def _listen(paths: list[Path]) -> list[socket.socket]:
    held = []
    for i, path in enumerate(paths):
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(str(path))
        srv.listen(1)
        held.append(srv)
        if i % 2 == 0:
            cli = socket.socket(socket.AF_UNIX)
            cli.connect(str(path))
            held += [cli, srv.accept()[0]]
    return held


def measure(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="vs-bench-") as tmp:
        paths = [Path(tmp) / f"s{i}.sock" for i in range(n)]
        held = _listen(paths)
        try:
            vifs = _vifs(paths)
            read_backends(vifs, [], "qemu:///system")  # warm-up
            reads, binds = [], []
            for _ in range(5):
                t0 = time.perf_counter()
                facts, errors = read_backends(vifs, [], "qemu:///system")
                t1 = time.perf_counter()
                snap = HostSnapshot("h", "qemu:///system", datetime.now(UTC), vifs=tuple(vifs), backends=facts)
                bound = bind(snap)
                binds.append(time.perf_counter() - t1)
                reads.append(t1 - t0)
                assert not errors and sum(b.status.value == "bound" for b in bound) == (n + 1) // 2
        finally:
            for s in held:
                s.close()
    return statistics.median(reads) * 1000, statistics.median(binds) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    procs = sum(p.isdigit() for p in os.listdir("/proc"))
    rows = [f"| {n:,} | {r:.1f} | {b:.1f} |" for n in SIZES for r, b in [measure(n)]]
    load = os.getloadavg()[0]
    text = "\n".join([
        "## vhost-user backend facts (bench/backends.py)",
        "",
        "`read_backends` for N vhostuser vifs on sockets the bench listens on (half connected), then `bind`.",
        f"The holder scan reads every /proc/PID/fd: {procs} processes on the host while measuring; "
        f"1-minute load average {load:.1f}. Median of 5; ms. Hosts without vhostuser/hostdev vifs pay nothing.",
        "",
        "| vhostuser vifs | read_backends | bind |",
        "|---:|---:|---:|",
        *rows,
    ])  # fmt: skip
    publish("backends", text, write=not args.no_write)


if __name__ == "__main__":
    main()
