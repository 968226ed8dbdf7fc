"""Benchmark: how fast ``vifscope watch --heal`` re-plugs a detached tap, and what an idle
watch costs. Run as root on a host with the lab prerequisites (make setup):

    .venv/bin/python bench/heal_latency.py [--events 60] [--idle 60] [--prefix vs-w-] [--net 10.84]

It builds (or reuses) the lab, starts ``watch --json --heal`` scoped to the lab's domains,
then N times: detach web1's tap (``ip link set TAP nomaster``) and time, on its own netlink
socket, until the kernel reports the tap back on its bridge. Heal latency therefore includes
everything: the netlink event, the link dump, the policy's grace period (default 0.2 s, kept),
the plan, ``ip link set master``, and the verification snapshot. The per-vif rate limit is
lifted for the run (max_heals = 1000, no back-off) — it exists precisely to stop repeated
heals of one vif. Idle CPU: the watch's own utime+stime (all threads, and waited children
such as the resync's ``ip``/``ovs-vsctl``) over --idle seconds with nothing happening.
Prints numbers and writes the "heal" section of BENCHMARKS.md; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import write_section

from vifscope.lab.lab import guest_targets, lab_down, lab_up, wait_ready
from vifscope.lab.topology import LabSpec
from vifscope.watch.nlmon import LinkMonitor

TICKS = os.sysconf("SC_CLK_TCK")


def log(line: str) -> None:
    print(line, file=sys.stderr)


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of a process (every thread; waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class WatchLines:
    """The watch child's JSON lines, each stamped with its arrival time."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, dict[str, object]]] = []
        self._proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append((time.perf_counter(), json.loads(line)))

    def first(self, event: str, since: float, target: str) -> float | None:
        for at, doc in list(self.lines):
            if at >= since and doc.get("event") == event and doc.get("target") == target:
                return at
        return None


def wait_master(mon: LinkMonitor, tap: str, bridge_index: int, timeout: float) -> float | None:
    """perf_counter() when the kernel reports ``tap`` enslaved to the bridge again.

    Only RTM_NEWLINK messages count, and only after one that shows the tap masterless: while
    the kernel unplugs a port it still sends messages naming the old master (the bridge's
    AF_BRIDGE port removal, the promiscuity drop).
    """
    deadline = time.perf_counter() + timeout
    detached = False
    while (left := deadline - time.perf_counter()) > 0:
        ready, _, _ = select.select([mon.fileno()], [], [], left)
        if not ready:
            return None
        got = mon.read()
        now = time.perf_counter()
        for e in got if isinstance(got, list) else ():
            if e.name != tap or e.action != "new" or e.bridge_port_msg:
                continue
            if e.master_ifindex is None:
                detached = True
            elif detached and e.master_ifindex == bridge_index:
                return now
    return None


def ip_index(name: str) -> int:
    return int(
        json.loads(subprocess.run(["ip", "-j", "link", "show", name], capture_output=True, check=True).stdout)[0][
            "ifindex"
        ]
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure_heals(spec: LabSpec, lines: WatchLines, n: int) -> tuple[list[float], list[float], int]:
    tap = guest_targets(spec.name("web1"))[0]
    assert tap, "web1 has no tap"
    bridge_index = ip_index(spec.bridge)
    mon = LinkMonitor()
    heal, seen, missed = [], [], 0
    for i in range(n):
        time.sleep(0.3)
        t0 = time.perf_counter()  # before ip starts: latencies include its ~2-5 ms exec (conservative)
        subprocess.run(["ip", "link", "set", tap, "nomaster"], check=True)
        back = wait_master(mon, tap, bridge_index, 5.0)
        if back is None:
            missed += 1
            log(f"event {i}: not healed within 5 s; re-plugging by hand")
            subprocess.run(["ip", "link", "set", tap, "master", spec.bridge], check=True)
            continue
        heal.append(back - t0)
        time.sleep(0.05)  # the reader thread may still be handing over the line
        printed = lines.first("transition", t0, tap)
        if printed is not None:
            seen.append(printed - t0)
    mon.close()
    return heal, seen, missed


def idle_cpu(pid: int, seconds: float) -> tuple[float, float, int]:
    """CPU seconds the watch used, wall seconds, and how many link events the host made
    meanwhile (other work on the host is not idle for a watcher: it must look at it)."""
    mon = LinkMonitor()
    events = 0
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    while (left := t0 + seconds - time.perf_counter()) > 0:
        ready, _, _ = select.select([mon.fileno()], [], [], left)
        if ready:
            got = mon.read()
            events += len(got) if isinstance(got, list) else 0
    mon.close()
    return cpu_seconds(pid) - c0, time.perf_counter() - t0, events


def row(what: str, values: list[float]) -> str:
    ms = [x * 1000 for x in values]
    if not ms:
        return f"| {what} | - | - | - | - | - |"
    return (
        f"| {what} | {pct(ms, 0.5):.0f} | {pct(ms, 0.9):.0f} | {pct(ms, 0.99):.0f} | {max(ms):.0f} |"
        f" {statistics.mean(ms):.0f} |"
    )


def report(
    heal: list[float],
    seen: list[float],
    missed: int,
    idle: tuple[float, float, int],
    rss: float,
    n_vifs: int,
    no_grace: tuple[list[float], int],
) -> str:
    cpu, wall, events = idle
    return "\n".join(
        [
            "## heal (`bench/heal_latency.py`)",
            "",
            f"`watch --heal` on the lab ({n_vifs} vifs, TCG guests), {len(heal) + missed} detach events of one tap"
            " (`ip link set TAP nomaster`) per row, timed from just before `ip` runs until the kernel reports the"
            " tap back on its bridge (the bench's own netlink socket). Rate limit lifted; the grace-0 row is the"
            " same watch after a SIGHUP config reload. The grace period (wait before healing, so libvirt can"
            " finish its own plugging) is most of the default latency.",
            "",
            "| measure | p50 | p90 | p99 | max | mean |",
            "|---|---|---|---|---|---|",
            row("detach → re-plugged, default grace 0.2 s (ms)", heal),
            row("detach → re-plugged, grace 0 (ms)", no_grace[0]),
            row("detach → transition printed (ms)", seen),
            "",
            f"Not healed within 5 s: {missed} + {no_grace[1]}. Idle watch: {cpu:.3f} s CPU over {wall:.0f} s ="
            f" {100 * cpu / wall:.2f} % of one core (all threads, one full resync included), RSS {rss:.0f} MB;"
            f" the host made {events} link events meanwhile (other work on it: each costs the watch a link dump).",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=60, help="detach events (>= 50 for the record)")
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measurement")
    ap.add_argument("--prefix", default="vs-w-", help="lab prefix (must start with vs-)")
    ap.add_argument("--net", default="10.84", help="lab subnets' first two octets")
    ap.add_argument("--keep-lab", action="store_true", help="leave the lab up afterwards")
    args = ap.parse_args()
    spec = LabSpec(prefix=args.prefix, net=args.net)
    lab_up(spec, log, wait=0)
    assert not wait_ready([g.name for g in spec.guests() if g.running], 90, log), "guests did not boot"
    tmp = Path(tempfile.mkdtemp(prefix="vs-w-bench-"))
    (tmp / "watch.toml").write_text("[heal]\nmax_heals = 1000\nbackoff_initial = 0\n")
    scope = [a for g in spec.guests() for a in ("-d", g.name)]
    cmd = [sys.executable, "-m", "vifscope", "watch", "--json", "--heal", *scope]
    cmd += ["--config", str(tmp / "watch.toml"), "--audit-log", str(tmp / "actions.jsonl")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        lines = WatchLines(proc)
        time.sleep(5)  # start-up, first heals of the lab's deliberately broken guest
        start = next(doc for _, doc in lines.lines if doc.get("event") == "start")
        idle = idle_cpu(proc.pid, args.idle)
        rss = rss_mb(proc.pid)
        heal, seen, missed = measure_heals(spec, lines, args.events)
        # Same again without the grace period, switched by SIGHUP (a config reload).
        (tmp / "watch.toml").write_text("[heal]\nmax_heals = 1000\nbackoff_initial = 0\ngrace = 0\n")
        proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert any(doc.get("event") == "reload" and doc.get("ok") for _, doc in lines.lines), "reload failed"
        heal0, _, missed0 = measure_heals(spec, lines, args.events)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.keep_lab:
            lab_down(spec, log)
    n_vifs = sum(int(v) for v in dict(start["counts"]).values())  # type: ignore[call-overload]
    text = report(heal, seen, missed, idle, rss, n_vifs, (heal0, missed0))
    print(text)
    write_section("heal", text)


if __name__ == "__main__":
    main()
