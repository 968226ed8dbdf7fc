"""``vifscope flows --collector packet`` (AF_PACKET sampling, the fallback where BPF cannot load):
how accurate its estimates are and what it costs, next to the BPF program.

1. Accuracy, against what the traffic tool says it moved, between the two netns guests of
   vifscope.lab.flowhost (their veths' host ends are the taps): a flood ping of 20,000 echo
   requests of 1,014-byte frames (the sender tap's ``out`` packets vs 20,000) and an iperf3 TCP
   stream of 2 s at 1 Gbit/s (``out`` payload bytes vs iperf3's bytes sent + its 37-byte cookie).
   Each sample rate ROUNDS times; the table gives every run's error.
2. Cost: iperf3 TCP (one stream, unlimited) and UDP with 64-byte datagrams (unlimited) with no
   collector, the BPF program, and the packet collector at 1:1 and 1:16; the throughput, the
   collector process's CPU while the traffic ran (utime+stime from /proc, % of one CPU), and for
   the packet collector the samples the kernel dropped because its socket buffer was full
   (``counters.failed``: counts lost, the estimate is low by that share). Medians of ROUNDS.

Writes the "flows_packet" section of BENCHMARKS.md. Run as root:
``.venv/bin/python bench/flows_packet.py`` (about 5 minutes). Objects are named with --prefix.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import write_section

from vifscope.lab.flowhost import FlowHost, flow_host

COOKIE = 37
PING_N, PING_PAYLOAD = 20000, 972
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def start_flows(h: FlowHost, collector: str, sample: int, interval: float) -> subprocess.Popen[str]:
    argv = ["flows", "--json", "--by", "flow", "--top", "1000", "--interval", str(interval)]
    argv += ["--collector", collector, "--sample", str(sample), h.domains[0]]
    proc = subprocess.Popen(h.vifscope_argv(*argv), env=h.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("flows: collecting"):
            return proc
    raise RuntimeError(f"flows did not start: {proc.communicate()}")


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(err)
    doc: dict[str, Any] = json.loads(out)
    return doc


def talkers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for v in doc["vifs"] for t in v["talkers"]]


def iperf(h: FlowHost, seconds: float, *extra: str) -> dict[str, Any]:
    server = subprocess.Popen(["ip", "netns", "exec", h.guests[1], "iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        ran = h.in_guest(0, "iperf3", "-c", h.addrs[1], "-t", str(seconds), "-J", *extra, timeout=seconds + 30)
    finally:
        server.wait(timeout=30)
    got: dict[str, Any] = json.loads(ran.stdout)
    return got


def dropped(doc: dict[str, Any]) -> float:
    """The share of sampled frames lost to a full socket buffer, %."""
    c = doc["counters"]
    return 100 * c["failed"] / max(1, c["failed"] + c["packets"])


def ping_error(h: FlowHost, sample: int) -> str:
    proc = start_flows(h, "packet", sample, 8)
    h.in_guest(0, "ping", "-f", "-c", str(PING_N), "-s", str(PING_PAYLOAD), h.addrs[1], timeout=60)
    doc = finish(proc)
    est = sum(t["out"]["packets"] for t in talkers(doc) if t["key"].startswith("icmp "))
    return f"{100 * (est - PING_N) / PING_N:+.2f} % ({dropped(doc):.0f} % dropped)"


def tcp_error(h: FlowHost, sample: int) -> str:
    proc = start_flows(h, "packet", sample, 5)
    res = iperf(h, 2, "-b", "1G")
    port = res["start"]["connected"][0]["local_port"]
    truth = res["end"]["sum_sent"]["bytes"] + COOKIE
    doc = finish(proc)
    est = sum(t["out"]["payload_bytes"] for t in talkers(doc) if t["key"].startswith(f"tcp :{port} "))
    return f"{100 * (est - truth) / truth:+.2f} % ({dropped(doc):.0f} % dropped)"


def accuracy(h: FlowHost, rounds: int) -> list[str]:
    lines = [
        "| sample rate | flood ping: estimated packets vs 20,000 (samples dropped), each run | iperf3 TCP 2 s at "
        "1 Gbit/s: estimated payload vs bytes sent, each run | expected spread (1 σ) for the ping |",
        "|---|---|---|---|",
    ]
    for n in (1, 8, 64):
        pings = [ping_error(h, n) for _ in range(rounds)]
        tcps = [tcp_error(h, n) for _ in range(rounds)]
        sigma = 100 * (PING_N * (1 / n) * (1 - 1 / n)) ** 0.5 * n / PING_N
        print(n, pings, tcps, flush=True)
        lines.append(f"| 1:{n} | {', '.join(pings)} | {', '.join(tcps)} | ±{sigma:.2f} % |")
    return lines


CONFIGS = (("none", "", 0), ("BPF program", "bpf", 1), ("packet 1:1", "packet", 1), ("packet 1:16", "packet", 16))


def cost_run(h: FlowHost, collector: str, sample: int, udp: bool, seconds: float) -> tuple[float, float, float]:
    """(throughput: bit/s or datagrams/s, collector CPU %, share of samples dropped %)."""
    extra = ("-u", "-l", "64", "-b", "0") if udp else ()
    proc = start_flows(h, collector, sample, seconds + 2) if collector else None
    cpu0 = cpu_seconds(proc.pid) if proc else 0.0
    t0 = time.monotonic()
    res = iperf(h, seconds, *extra)
    cpu = 100 * (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0) if proc else 0.0
    lost = 0.0
    if proc:
        lost = dropped(finish(proc))
    end = res["end"]
    if udp:
        s = end["sum"]
        return (s["packets"] - s["lost_packets"]) / s["seconds"], cpu, lost
    return end["sum_received"]["bits_per_second"], cpu, lost


def cost(h: FlowHost, rounds: int, seconds: float) -> list[str]:
    lines = [
        "| collector | TCP, 1 stream | collector CPU | samples dropped | UDP 64 B | collector CPU | samples dropped |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, collector, sample in CONFIGS:
        tcp = [cost_run(h, collector, sample, False, seconds) for _ in range(rounds)]
        udp = [cost_run(h, collector, sample, True, seconds) for _ in range(rounds)]
        med = [statistics.median(x) for x in zip(*tcp, strict=True)] + [
            statistics.median(x) for x in zip(*udp, strict=True)
        ]
        print(label, med, flush=True)
        cpu = (f"{med[1]:.0f} %", f"{med[4]:.0f} %") if collector else ("–", "–")
        drop = (f"{med[2]:.1f} %", f"{med[5]:.1f} %") if collector == "packet" else ("–", "–")
        lines.append(
            f"| {label} | {med[0] / 1e9:.2f} Gbit/s | {cpu[0]} | {drop[0]} | {med[3] / 1e3:.0f} kpps | {cpu[1]} "
            f"| {drop[1]} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", default="vs-fp-b")
    ap.add_argument("--net", default="10.143")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix=args.prefix) as tmp, flow_host(Path(tmp), args.prefix, args.net) as h:
        acc = accuracy(h, args.rounds)
        costs = cost(h, args.rounds, args.seconds)
    load = os.getloadavg()[0]
    body = "\n".join(
        [
            "## flows: the packet-sampling fallback, accuracy and cost (bench/flows_packet.py)",
            "",
            f"{os.cpu_count()} CPUs, kernel {os.uname().release}, load average {load:.1f} at the end (other work "
            "shares this machine). Two netns guests behind veths on a bridge; `vifscope flows --collector packet "
            "--sample N` on the sender's tap (the BPF row: the BPF program on the same tap). Errors are the "
            "estimate against what the traffic tool says it sent, every run shown.",
            "",
            *acc,
            "",
            f"Cost: iperf3 {args.seconds:g} s a run, medians of {args.rounds}. Collector CPU is the `vifscope flows` "
            "process (its reader thread decoding samples in Python; the BPF program's cost is in the kernel, "
            "see the flows section); the filter's kernel cost shows in the throughput. Dropped samples are "
            "frames the socket buffer (4 MiB) had no room for: counts lost, reported in `counters.failed`. "
            "Throughput varies by ±15 % from run to run on this shared machine: read the CPU and drop columns.",
            "",
            *costs,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("flows_packet", body)


if __name__ == "__main__":
    main()
