"""Scale benchmark: vifscope on a synthetic host of up to 5,000 vifs (issue 5).

Builds each size with vifscope.lab.synth (the domains in libvirtd's shared test driver,
reached over libvirtd's socket like a real host -- or with --node-file an in-process
test-driver node file -- plus real bridges and held taps in the netns vs-scale), then
times, side by side in the same run:
  * ``vifscope status --json`` (and ``doctor --json`` / one exporter scrape when present),
  * the floor: one process that opens libvirt, fetches every domain's XML and takes one
    ``ip -j -s -d link show`` dump, with no parsing-into-model and no joining,
  * the admin's loop: ``virsh domiflist`` per domain + ``ip link show dev X`` per vif, timed
    on a sample and extrapolated (printed as such).
Every figure is the median of --runs runs (default 5). Also checks that the planted
faults get exactly the planted verdicts. Run as root: ``.venv/bin/python bench/scale.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import median_runs, precompile, run_timed, write_section

from vifscope.lab.host import ensure_libvirtd
from vifscope.lab.synth import SynthHost, SynthPlan, plan

NS = "vs-scale"
NICS = 4
FLOOR = """
import subprocess, libvirt, sys
conn = libvirt.openReadOnly(sys.argv[1])
xmls = [d.XMLDesc(0) for d in conn.listAllDomains(0)]
dump = subprocess.run(["ip", "-j", "-s", "-d", "link", "show"], capture_output=True).stdout
print(len(xmls), len(dump))
"""


def in_ns(*cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *cmd]


def vifscope(uri: str, *args: str) -> list[str]:
    return in_ns(sys.executable, "-m", "vifscope", "-c", uri, *args)


def check_verdicts(p: SynthPlan, out: bytes) -> tuple[bool, int]:
    doc = json.loads(out)
    got = {(v["domain"], v["index"]): v["status"] for v in doc["vifs"]}
    want = {(v.domain, v.index): v.expect for v in p.vifs}
    broken = sum(1 for v in p.vifs if v.expect not in ("bound", "inactive"))
    return got == want, broken


def admin_loop(uri: str, p: SynthPlan, sample: int, daemon: bool) -> tuple[float, float]:
    """Seconds the per-domain / per-vif shell loop would take, from a timed sample, and what
    adding ``bridge link show dev TAP`` per vif (as the issue's own 1,280-vif measurement did)
    would add on top.

    Against libvirtd (the default) every ``virsh domiflist`` is run and timed as its own
    process, as the admin would. An in-process ``virsh -c test:///node.xml`` would re-parse
    the whole node file each time, which real libvirtd does not; in --node-file mode a virsh
    call is therefore costed as (one shell of many domiflist commands) per domain plus the
    process+connect cost of ``virsh -c qemu:///system version`` on this host.
    """
    doms = list(p.domains)[:sample]
    vifs = [v for v in p.vifs if v.domain in doms and v.fault != "missing"]
    t0 = time.perf_counter()
    if daemon:
        for d in doms:
            subprocess.run(["virsh", "-c", uri, "domiflist", d], capture_output=True, check=False)
        per_dom = (time.perf_counter() - t0) / len(doms)
    else:
        batch = "".join(f"domiflist {d}\n" for d in doms)
        subprocess.run(["virsh", "-c", uri], input=batch.encode(), capture_output=True, check=False)
        per_dom = (time.perf_counter() - t0) / len(doms)
        per_dom += statistics.median(run_timed(["virsh", "-c", "qemu:///system", "version"]).seconds for _ in range(3))
    per_vif = _per_vif_loop(["ip", "link", "show", "dev"], [v.tap for v in vifs])
    per_bridge = _per_vif_loop(["bridge", "link", "show", "dev"], [v.tap for v in vifs])
    return len(p.domains) * per_dom + len(p.vifs) * per_vif, len(p.vifs) * per_bridge


def _per_vif_loop(cmd: list[str], taps: list[str]) -> float:
    """Seconds per tap of ``CMD TAP`` run by a shell loop inside the namespace, as an admin on
    that host would (no ``ip netns exec`` per call)."""
    loop = f'for t in "$@"; do {" ".join(cmd)} "$t" >/dev/null; done'
    t0 = time.perf_counter()
    subprocess.run(in_ns("sh", "-c", loop, "sh", *taps), capture_output=True, check=False)
    return (time.perf_counter() - t0) / len(taps)


def bench_size(vifs: int, runs: int, sample: int, daemon: bool) -> dict[str, float | int | bool | str]:
    p = plan(domains=vifs // NICS, nics=NICS)
    with SynthHost(p, NS, daemon=daemon) as host:
        status_s, status_rss, last = median_runs(vifscope(host.uri, "status", "--json"), runs)
        correct, broken = check_verdicts(p, last.stdout)
        floor_s, floor_rss, _ = median_runs(in_ns(sys.executable, "-c", FLOOR, host.uri), runs)
        row: dict[str, float | int | bool | str] = {
            "vifs": len(p.vifs),
            "status_s": status_s,
            "status_rss_mb": status_rss / 1024,
            "floor_s": floor_s,
            "floor_rss_mb": floor_rss / 1024,
            "correct": correct,
            "broken": broken,
        }
        doctor = run_timed(vifscope(host.uri, "doctor", "--json"))
        if doctor.returncode in (0, 1, 3):
            row["doctor_s"], row["doctor_rss_mb"], _ = median_runs(vifscope(host.uri, "doctor", "--json"), runs)
            row["doctor_rss_mb"] = float(row["doctor_rss_mb"]) / 1024
        row["admin_loop_s"], row["bridge_link_s"] = admin_loop(host.uri, p, sample, daemon)
    return row


DAEMON_HEAD = """## Scale: synthetic host, domains served by libvirtd (bench/scale.py)

N/4 domains x 4 NICs in libvirtd's own test driver (`test+unix:///default`: every call is a
round trip over libvirtd's socket, as on a real host), real bridges and taps held open in the
netns `vs-scale`; every 25th vif broken on purpose (detached / misbound / down / missing),
every 50th domain shut off. `floor`: one process that opens libvirt, fetches every domain's XML
one by one and takes one `ip -j -s -d link show`, parsing nothing. `admin loop`: `virsh -c
test+unix:///default domiflist DOM` per domain and `ip link show dev TAP` per vif (a shell loop
run inside the netns), each its own process, timed on 20 domains and extrapolated. `+ bridge
link`: what `bridge link show dev TAP` per vif would add (the issue's own 1,280-vif measurement
included it; each call reads the whole link table) — context, not the target's loop."""

NODE_FILE_HEAD = """## Scale: synthetic host, in-process test driver (bench/scale.py --node-file)

The same host with the domains in a node file read by libvirt's in-process test driver
(`test:///path/node.xml`): every connection re-parses the whole file (0.5 s at 1,250 domains),
which status, doctor and the floor all pay and real libvirtd does not. The admin loop here costs
each virsh call as one `domiflist` in a batch plus `virsh -c qemu:///system version`."""


def render(rows: list[dict[str, float | int | bool | str]], runs: int) -> str:
    head = (
        "| vifs | status s | status RSS MB | floor s | status/floor | doctor s | doctor/floor "
        "| admin loop s (extrapolated) | speed-up | + bridge link s | speed-up with it | verdicts exact |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        fs, ss = float(r["floor_s"]), float(r["status_s"])
        ds = float(r.get("doctor_s", "nan"))
        loop, bridge = float(r["admin_loop_s"]), float(r["bridge_link_s"])
        lines.append(
            f"| {r['vifs']} | {ss:.3f} | {float(r['status_rss_mb']):.0f} | {fs:.3f} | {ss / fs:.2f}x "
            f"| {ds:.3f} | {ds / fs:.2f}x | {loop:.1f} | {loop / ss:.0f}x | {bridge:.1f} | {(loop + bridge) / ss:.0f}x "
            f"| {r['correct']} ({r['broken']} broken) |"
        )
    return "\n".join(lines) + f"\n\nMedian of {runs} runs each; process wall time, peak RSS from wait4()."


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="500,1000,2500,5000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sample", type=int, default=20, help="domains timed for the admin loop")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    ap.add_argument("--node-file", action="store_true", help="in-process test driver instead of libvirtd's")
    args = ap.parse_args()
    precompile()
    if not args.node_file:
        ensure_libvirtd()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows.append(bench_size(size, args.runs, args.sample, not args.node_file))
        print(json.dumps(rows[-1]), flush=True)
    table = render(rows, args.runs)
    print(table)
    if not args.no_write:
        name, head = ("scale-node-file", NODE_FILE_HEAD) if args.node_file else ("scale", DAEMON_HEAD)
        write_section(name, head + "\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
