"""``vifscope flows``: what the BPF program costs and how fast its map reads.

1. Overhead: iperf3 between the two netns guests of vifscope.lab.flowhost (veths on a bridge,
   their host ends the taps of test-driver domains), without and with ``vifscope flows``
   attached to both taps; TCP (one stream, receiver's bit/s) and UDP with 64-byte datagrams
   (unlimited rate, datagrams received per second). Rounds alternate off/on; medians.
2. Reading the map: a FlowCollector's LRU map filled from user space with 10,000 / 50,000
   distinct flows, then ``read()`` (batch lookup + decode into FlowRecords) timed; medians of 5.
3. Attaching to many taps: 1,000 taps (ip tuntap, in a private netns), a TCX link each way on
   each; the time to attach all, an idle read, and the time to detach all.

Writes the "flows" section of BENCHMARKS.md. Run as root: ``.venv/bin/python bench/flows.py``
(about 2 minutes). Objects are named with --prefix (default vs-fl-b).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import write_section

from vifscope.lab.flowhost import FlowHost, flow_host, vifscope_programs
from vifscope.sources.flows.collector import KEY, VAL, FlowCollector


def iperf(h: FlowHost, udp: bool, seconds: int) -> float:
    """Receiver's bit/s (TCP) or datagrams/s received (UDP, 64-byte payloads)."""
    server = subprocess.Popen(["ip", "netns", "exec", h.guests[1], "iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        extra = ["-u", "-l", "64", "-b", "0"] if udp else []
        ran = h.in_guest(0, "iperf3", "-c", h.addrs[1], "-t", str(seconds), "-J", *extra, timeout=seconds + 30)
    finally:
        server.wait(timeout=30)
    end = json.loads(ran.stdout)["end"]
    if udp:
        s = end["sum"]
        return float(s["packets"] - s["lost_packets"]) / float(s["seconds"])
    return float(end["sum_received"]["bits_per_second"])


def program_cost(before: set[int]) -> tuple[int, int]:
    """(run_time_ns, run_cnt) summed over the vifscope programs not in ``before`` (needs BPF
    run-time stats on: ``enable_stats``)."""
    progs = [p for p in vifscope_programs() if p["id"] not in before]
    return sum(int(p.get("run_time_ns", 0)) for p in progs), sum(int(p.get("run_cnt", 0)) for p in progs)


def enable_stats() -> int:
    """BPF run-time statistics while the returned fd is open (BPF_ENABLE_STATS: reverts by itself
    when this process exits; no sysctl is changed)."""
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    fd = int(lib.bpf_enable_stats(0))  # BPF_STATS_RUN_TIME
    if fd < 0:
        raise OSError(-fd, "bpf_enable_stats failed")
    return fd


COSTS: dict[str, list[tuple[int, int]]] = {}  # traffic label -> (run_time_ns, run_cnt) of each run


def with_flows(h: FlowHost, udp: bool, seconds: int) -> float:
    before = {p["id"] for p in vifscope_programs()}
    proc = subprocess.Popen(
        h.vifscope_argv("flows", "--json", "--interval", "100000"), env=h.env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("flows: collecting"):
            break
    try:
        got = iperf(h, udp, seconds)
        COSTS.setdefault("UDP, 64 B" if udp else "TCP, 1 stream", []).append(program_cost(before))
        return got
    finally:
        # SIGTERM, not SIGINT: a background job's SIGINT may be ignored. Python then dies
        # without cleanup, and the kernel detaches the links as their fds close.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def overhead(prefix: str, net: str, rounds: int, seconds: int) -> list[str]:
    lines = [
        "| traffic | without flows: median (min–max) | with flows: median (min–max) | change of the medians "
        "| program run time per packet (kernel's BPF stats) |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix=f"{prefix}") as tmp, flow_host(Path(tmp), prefix, net) as h:
        for udp, label, unit, scale in ((False, "TCP, 1 stream", "Gbit/s", 1e9), (True, "UDP, 64 B", "kpps", 1e3)):
            off, on = [], []
            for _ in range(rounds):
                off.append(iperf(h, udp, seconds))
                on.append(with_flows(h, udp, seconds))
            a, b = statistics.median(off), statistics.median(on)
            print(label, [round(x / scale, 2) for x in off], [round(x / scale, 2) for x in on], flush=True)
            span = [
                f"{a / scale:.2f} ({min(xs) / scale:.2f}–{max(xs) / scale:.2f}) {unit}" for a, xs in ((a, off), (b, on))
            ]
            ns, cnt = (sum(x) for x in zip(*COSTS.get(label, [(0, 0)]), strict=True))
            per = f"{ns / cnt:.0f} ns" if cnt else "n/a"
            lines.append(f"| {label} | {span[0]} | {span[1]} | {100 * (b - a) / a:+.1f} % | {per} |")
    return lines


def fill(col: FlowCollector, n: int) -> None:
    """n distinct IPv4/UDP flows written into the map from user space."""
    val = ctypes.create_string_buffer(VAL.pack(1500, 1, 1458, 0))
    mac = bytes.fromhex("525400000001")
    for i in range(n):
        src = socket.inet_aton(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") + bytes(12)
        key = ctypes.create_string_buffer(KEY.pack(7, i & 1, 17, 0x0800, mac, mac, src, src, i & 0xFFFF, 53))
        assert col.bpf.call("bpf_map_update_elem", col.map_fd, key, val, 0) == 0


def read_times(sizes: list[int]) -> list[str]:
    lines = [
        "| flows in the map | batch lookup only | read() (lookup + FlowRecords) | per flow |",
        "|---|---|---|---|",
    ]
    for n in sizes:
        with FlowCollector(max_flows=max(n, 1024) * 2) as col:
            fill(col, n)
            lookup, total = [], []
            for _ in range(5):
                t0 = time.perf_counter()
                keys, _vals = col._lookup_all()
                t1 = time.perf_counter()
                sample = col.read()
                total.append(time.perf_counter() - t1)
                lookup.append(t1 - t0)
            assert len(sample.records) == len(keys) == n, len(sample.records)
        ms, lk = statistics.median(total) * 1000, statistics.median(lookup) * 1000
        print(f"read {n}: lookup {lk:.1f} ms, read {ms:.1f} ms", flush=True)
        lines.append(f"| {n:,} | {lk:.1f} ms | {ms:.1f} ms | {ms * 1000 / n:.2f} µs |")
    return lines


def many_taps(prefix: str, n: int) -> list[str]:
    ns = f"{prefix}many"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        batch = "".join(f"tuntap add dev t{i} mode tap\nlink set t{i} up\n" for i in range(n))
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True, check=True)
        # The child runs inside the netns (ifindexes are per namespace): ip netns exec.
        child = ["ip", "netns", "exec", ns, sys.executable, __file__, "--attach-child", str(n)]
        r = json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    print(r, flush=True)
    return [
        f"{n:,} taps ({2 * n:,} TCX links): attach all {r['attach_s']:.2f} s, idle read {r['read_ms']:.1f} ms, "
        f"detach all {r['detach_s']:.2f} s; CPU (user+sys) of the attach {r['cpu_s']:.2f} s. The wall time is "
        "the kernel's: each TCX attach and detach waits for an RCU grace period under the rtnl lock, so they "
        "serialise (300 taps from 1 thread: 6.1 s; from 64 threads: 5.0 s). Between reads the collector uses "
        "no CPU (no thread polls: `exporter --flows` reads once per scrape); a busy host's read costs what the "
        "table above says for its number of flows. The per-packet cost is the kernel's (the iperf3 table); "
        "the daemon's CPU at 1,000 vifs, idle and under load: the next section (bench/flows_cpu.py).",
    ]


def _attach_all(n: int) -> dict[str, float]:
    with FlowCollector() as col:
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(n):
            col.attach(socket.if_nametoindex(f"t{i}"))
        attach_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        sample = col.read()
        t1 = time.perf_counter()
        for ifindex in list(col.links):
            col.detach(ifindex)
        detach_s = time.perf_counter() - t1
    return {"attach_s": attach_s, "cpu_s": cpu_s, "read_ms": sample.read_ms, "detach_s": detach_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prefix", default="vs-fl-b")
    ap.add_argument("--net", default="10.104")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--taps", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--attach-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.attach_child:
        print(json.dumps(_attach_all(args.attach_child)))
        return
    stats_fd = enable_stats()
    try:
        over = overhead(args.prefix, args.net, args.rounds, args.seconds)
    finally:
        os.close(stats_fd)
    reads = read_times([10_000, 50_000])
    taps = many_taps(args.prefix, args.taps)
    assert not vifscope_programs(), "a vifscope program outlived the bench"
    cpus = os.cpu_count()
    body = "\n".join(
        [
            "## flows: BPF overhead, map reads, many taps (bench/flows.py)",
            "",
            f"{cpus} CPUs, kernel {os.uname().release}, load average {os.getloadavg()[0]:.1f} at the end (other "
            f"work shares this machine: compare within a run, not across); iperf3 {args.seconds} s a run, medians "
            f"of {args.rounds} "
            "alternating rounds, between two netns behind veths on a bridge (the veths' host ends are the taps "
            "flows attaches to, both ways). The last column is the program's own cost, from the kernel's BPF "
            "run-time statistics (enabled for the bench with BPF_ENABLE_STATS): mean ns per run, one run per skb "
            "(a GSO packet is one run) and direction, so it does not depend on the machine's noise the way "
            "throughput does.",
            "",
            *over,
            "",
            "Reading the map (batch lookup of 4,096 entries a call, decoded into FlowRecords):",
            "",
            *reads,
            "",
            *taps,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("flows", body)


if __name__ == "__main__":
    main()
