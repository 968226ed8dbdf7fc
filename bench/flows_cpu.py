"""``watch --flows`` at 1,000 vifs: the daemon's CPU, idle and under load.

A private netns plays a host with 1,000 vifs: 250 running test-driver domains x 4 NICs (served
by a private libvirtd, as watch needs a daemon), each NIC's tap a veth on one bridge whose other
end sits, up, in a second netns (the "guests", no addresses, IPv6 off in both: no chatter).
Every guest MAC is a static FDB entry, so no frame is flooded to 1,000 ports.

1. ``watch`` without ``--flows``: its own idle CPU, the baseline.
2. ``watch --flows 10`` (a map read every 10 s, as ``--flows SECONDS`` says): idle, once all 2,000
   TCX links are attached.
3. The same under load: a packet generator in the guests' netns sends 64-byte UDP frames from
   200 vifs, 50 flows each (each to another of the 200 guests' MAC and address, its own source
   port): 10,000 flows, each seen leaving one tap and entering another: 20,000 map entries; 20,000
   frames/s in all.

The daemon's CPU is utime+stime from /proc/PID/stat over each 60 s window (% of one core), its
RSS from /proc/PID/status; a read cycle's CPU is the burst every 10 s (sampled every 20 ms);
the map read (batch lookup + decode, what the daemon does) is timed on the daemon's own map
from here, which also counts the flows it holds. Writes the "flows-cpu" section of BENCHMARKS.md.
Run as root: ``.venv/bin/python bench/flows_cpu.py`` (about 6 minutes). Everything it made is
removed at the end, also on failure (two netns: their veths go with them).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import write_section

from vifscope.lab.flowhost import bpftool, vifscope_programs
from vifscope.lab.private import PrivateLibvirtd, wait_until
from vifscope.sources.flows.collector import Decoder, FlowCollector
from vifscope.sources.flows.libbpf import LibBpf

SRC = Path(__file__).resolve().parents[1] / "src"
TICK = os.sysconf("SC_CLK_TCK")


def mac(i: int) -> str:
    return f"52:54:00:fc:{i >> 8:02x}:{i & 255:02x}"


def sh(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True)


@contextmanager
def many_vifs(prefix: str, n: int) -> Iterator[tuple[str, str]]:
    """(host netns, guests netns) with n veths; both deleted on the way out, whatever happens."""
    host, guests = f"{prefix}cpuh", f"{prefix}cpug"
    for ns in (host, guests):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # a killed run's leftovers
    try:
        for ns in (host, guests):
            sh("ip", "netns", "add", ns)
            for key in ("all", "default"):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
        links = ["link add br0 type bridge", "link set br0 up", "link set lo up"]
        for i in range(n):
            links += [
                f"link add t{i} type veth peer name e{i} netns {guests} address {mac(i)}",
                f"link set t{i} master br0 up",
            ]
        sh("ip", "-n", host, "-batch", "-", stdin="\n".join(links) + "\n")
        sh("ip", "-n", guests, "-batch", "-", stdin="".join(f"link set e{i} up\n" for i in range(n)))
        fdb = "".join(f"fdb add {mac(i)} dev t{i} master static\n" for i in range(n))
        sh("bridge", "-n", host, "-batch", "-", stdin=fdb)
        yield host, guests
    finally:
        for ns in (host, guests):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def node_xml(n: int, nics: int) -> str:
    doms = []
    for d in range(n // nics):
        ifaces = "".join(
            f"<interface type='bridge'><mac address='{mac(i)}'/><source bridge='br0'/><target dev='t{i}'/></interface>"
            for i in range(d * nics, (d + 1) * nics)
        )
        doms.append(
            f"<domain type='test'><name>fc{d}</name><uuid>fcfcfcfc-0000-4000-8000-{d:012d}</uuid>"
            f"<memory>65536</memory><os><type>hvm</type></os><devices>{ifaces}</devices></domain>"
        )
    return f"<node>{''.join(doms)}</node>\n"


class Daemon:
    """``vifscope watch`` in the host netns: its stdout drained (flows events counted)."""

    def __init__(self, host: str, uri: str, work: Path, flows: float | None) -> None:
        argv = ["ip", "netns", "exec", host, sys.executable, "-m", "vifscope", "-c", uri, "watch", "--json"]
        argv += ["--audit-log", str(work / "audit.jsonl"), *(["--flows", f"{flows:g}"] if flows else [])]
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        self.err = (work / "watch.err").open("w")
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.started = threading.Event()
        self.events: Counter[str] = Counter()
        threading.Thread(target=self._pump, daemon=True).start()
        if not self.started.wait(120):
            self.stop()
            raise RuntimeError(f"watch did not start: {(work / 'watch.err').read_text()[-2000:]}")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            kind = json.loads(line).get("event")
            if kind == "start":
                self.started.set()
            self.events[str(kind)] += 1

    @property
    def pid(self) -> int:
        return self.proc.pid  # ip netns exec execs python: this is watch itself

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Window:
    cpu_pct: float  # of one core
    rss_mb: float
    bursts_ms: tuple[int, ...]  # CPU of each busy stretch (a read cycle), ms
    seconds: float


def measure(pid: int, seconds: float) -> Window:
    """CPU over ``seconds``; busy stretches found by sampling every 20 ms (a stretch ends after
    100 ms without a tick)."""
    t0, c0 = time.monotonic(), cpu_ticks(pid)
    bursts: list[int] = []
    last_c, last_busy, cur = c0, 0.0, 0
    while (now := time.monotonic()) - t0 < seconds:
        time.sleep(0.02)
        c = cpu_ticks(pid)
        if c > last_c:
            cur, last_busy = cur + c - last_c, now
        elif cur and now - last_busy > 0.1:
            bursts.append(cur * 1000 // TICK)
            cur = 0
        last_c = c
    if cur:
        bursts.append(cur * 1000 // TICK)
    used = (cpu_ticks(pid) - c0) / TICK
    return Window(100 * used / (time.monotonic() - t0), rss_mb(pid), tuple(bursts), time.monotonic() - t0)


def our_programs(before: set[int]) -> list[dict[str, object]]:
    return [p for p in vifscope_programs() if p["id"] not in before]


def attached_links(before: set[int]) -> int:
    ids = {p["id"] for p in our_programs(before)}
    return len([link for link in bpftool("link", "show") if link.get("prog_id") in ids])


def read_daemon_map(before: set[int]) -> tuple[int, float]:
    """(flows held, ms of batch lookup + decode) on the daemon's own flow map, from here."""
    map_ids = {m for p in our_programs(before) for m in p.get("map_ids", [])}  # type: ignore[attr-defined]
    flows_id = next(m["id"] for m in bpftool("map", "show") if m["id"] in map_ids and m.get("name") == "flows")
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    fd = int(lib.bpf_map_get_fd_by_id(ctypes.c_uint32(flows_id)))
    assert fd >= 0, f"bpf_map_get_fd_by_id: {fd}"
    reader = FlowCollector.__new__(FlowCollector)  # only its map reading: nothing loaded or attached
    reader.bpf, reader.map_fd = LibBpf(), fd
    times, count = [], 0
    try:
        for _ in range(5):
            t0 = time.perf_counter()
            keys, vals = reader._lookup_all()
            dec = Decoder()
            count = len(tuple(map(dec.record, keys, vals)))
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
    return count, statistics.median(times)


def frames(senders: int, per: int, net: str) -> list[tuple[int, bytes]]:
    """(sender, 64-byte Ethernet/IPv4/UDP frame) for each flow."""
    out = []
    for i in range(senders):
        for k in range(per):
            j = (i + 1 + k) % senders
            src, dst = (socket.inet_aton(f"{net}.{200 + (x >> 8)}.{x & 255}") for x in (i, j))
            udp = struct.pack("!HHHH", 20000 + k, 5000, 8 + 18, 0) + bytes(18)
            hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, src, dst)
            csum = sum(struct.unpack("!10H", hdr))
            csum = (csum & 0xFFFF) + (csum >> 16)
            hdr = hdr[:10] + struct.pack("!H", ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF) + hdr[12:]
            eth = bytes.fromhex(mac(j).replace(":", "") + mac(i).replace(":", "")) + b"\x08\x00"
            out.append((i, eth + hdr + udp))
    return out


def generate(senders: int, per: int, rate: int, net: str) -> None:
    """The load (run inside the guests' netns): every flow's frame in turn, ``rate`` a second."""
    socks = []
    for i in range(senders):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((f"e{i}", 0))
        socks.append(s)
    todo = [(socks[i], f) for i, f in frames(senders, per, net)]
    print("ready", flush=True)
    sent, t0 = 0, time.monotonic()
    while True:
        due = int((time.monotonic() - t0) * rate)
        while sent < due:
            sock, frame = todo[sent % len(todo)]
            sock.send(frame)
            sent += 1
        time.sleep(0.005)


@contextmanager
def load(guests: str, senders: int, per: int, rate: int, net: str) -> Iterator[None]:
    argv = ["ip", "netns", "exec", guests, sys.executable, __file__, "--generate", f"{senders},{per},{rate}"]
    proc = subprocess.Popen([*argv, "--net", net], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait()


def show(label: str, w: Window) -> str:
    cyc = f"{statistics.median(w.bursts_ms):.0f} ms" if w.bursts_ms else "none"
    print(f"{label}: {w}", flush=True)
    return f"| {label} | {w.cpu_pct:.2f} % | {w.rss_mb:.0f} MB | {len(w.bursts_ms)} | {cyc} |"


def run(args: argparse.Namespace) -> list[str]:
    rows = [f"| watch, {args.vifs:,} vifs | CPU (% of one core) | RSS | busy stretches | CPU of a stretch (median) |"]
    rows.append("|---|---|---|---|---|")
    before = {p["id"] for p in vifscope_programs()}
    notes: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix=args.prefix) as tmp, many_vifs(args.prefix, args.vifs) as (host, guests):
        work = Path(tmp)
        (work / "node.xml").write_text(node_xml(args.vifs, 4))
        with PrivateLibvirtd() as libvirtd:
            libvirtd.start()
            uri = libvirtd.uri(work / "node.xml")
            plain = Daemon(host, uri, work, None)
            try:
                time.sleep(args.settle)
                rows.append(show("without --flows, idle", measure(plain.pid, args.window)))
                print("events without --flows:", dict(plain.events), flush=True)
            finally:
                plain.stop()
            t0 = time.monotonic()
            watch = Daemon(host, uri, work, args.interval)
            try:
                if not wait_until(lambda: attached_links(before) >= 2 * args.vifs, 900, 1.0):
                    raise RuntimeError(f"only {attached_links(before)} links after 900 s")
                notes["attach_s"] = time.monotonic() - t0
                time.sleep(max(args.interval, args.settle))  # past the read that follows the last attach
                rows.append(show(f"--flows {args.interval:g}, idle", measure(watch.pid, args.window)))
                notes["idle"] = read_daemon_map(before)
                senders, per, rate = args.senders, args.per, args.rate
                with load(guests, senders, per, rate, args.net):
                    time.sleep(args.interval + 2)  # every flow in the map, one read past
                    rows.append(show(f"--flows {args.interval:g}, under load", measure(watch.pid, args.window)))
                    notes["load"] = read_daemon_map(before)
                notes["events"] = watch.events["flows"]
                print("events with --flows:", dict(watch.events), flush=True)
            finally:
                watch.stop()
    wait_until(lambda: not our_programs(before), 30, 0.5)
    assert not our_programs(before), "a vifscope program outlived watch"
    return [*rows, "", summary(args, notes)]


def summary(args: argparse.Namespace, notes: dict[str, object]) -> str:
    idle_flows, idle_ms = notes["idle"]  # type: ignore[misc]
    load_flows, load_ms = notes["load"]  # type: ignore[misc]
    return (
        f"All {2 * args.vifs:,} TCX links were attached {notes['attach_s']:.0f} s after watch started (2 s of "
        f"attaching per table update or flows tick). Flows held in the daemon's map: {idle_flows:,} idle, "
        f"{load_flows:,} under load; the map read (batch lookup + decode into FlowRecords, timed from the bench on the "
        f"daemon's own map, median of 5): {idle_ms:.1f} ms idle, {load_ms:.1f} ms under load; the rest of a "
        "read cycle's CPU is the delta since the last read, grouping and naming every record, and one event "
        "per vif that moved traffic. Load: "
        f"{args.senders} vifs x {args.per} flows = {args.senders * args.per:,} UDP flows of 64-byte frames, "
        f"{args.rate:,} frames/s in all from one AF_PACKET generator in the guests' netns. The per-packet "
        f"cost is the kernel's, in softirq, charged to the sender (the iperf3 table above), not to the "
        f"daemon. {notes['events']:,} flows events were printed."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prefix", default="vs-fc-")
    ap.add_argument("--net", default="10.105")
    ap.add_argument("--vifs", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=30.0, help="seconds after start before the idle windows")
    ap.add_argument("--senders", type=int, default=200)
    ap.add_argument("--per", type=int, default=50)
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--generate", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        senders, per, rate = map(int, args.generate.split(","))
        generate(senders, per, rate, args.net)
        return
    rows = run(args)
    body = "\n".join(
        [
            "## flows: the collector's CPU at 1,000 vifs (bench/flows_cpu.py)",
            "",
            f"{os.cpu_count()} CPUs, kernel {os.uname().release}, load average {os.getloadavg()[0]:.1f} at the end. "
            f"`vifscope watch` over a private libvirtd (test driver: {args.vifs // 4:,} running domains x 4 NICs), "
            f"its taps {args.vifs:,} veths on one bridge in a private netns; each window {args.window:g} s; CPU is "
            "the daemon process's utime+stime (/proc/PID/stat), a busy stretch a run of CPU use sampled every 20 ms "
            f"(with --flows: the read cycle, map read + binding + events). Idle windows start {args.settle:g} s "
            "after watch's start event (its first minute is busier: startup work).",
            "",
            *rows,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("flows-cpu", body)


if __name__ == "__main__":
    main()
