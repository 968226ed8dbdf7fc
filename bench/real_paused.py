"""Real-libvirtd scale check: N paused TCG domains x 4 NICs on qemu:///system (issue 5).

Paused domains need no guest OS, yet QEMU holds their taps open (real carrier). A few
percent of taps are broken for real (detached / moved to a spare bridge / admin down);
vifscope must name exactly those. Times, median of --runs: ``vifscope status --json``
against the admin's loop (``virsh domiflist`` per domain + ``ip link show dev`` and
``bridge link show dev`` per vif), both run in full here, no extrapolation.
Everything is named vs-p*; it is all removed at the end, even on failure.
Run as root: ``.venv/bin/python bench/real_paused.py --domains 32``.
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
from benchlib import median_runs, precompile, write_section

from vifscope.lab.host import ensure_libvirtd
from vifscope.model import DomainState
from vifscope.sources.libvirt.domxml import parse_domain_xml

URI = "qemu:///system"
BR, SPARE = "vs-pbr0", "vs-pbr1"
NICS = 4


def sh(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return proc.stdout


def domain_xml(i: int) -> str:
    nics = "".join(
        f"<interface type='bridge'><mac address='52:54:01:00:{i:02x}:{k:02x}'/>"
        f"<source bridge='{BR}'/><model type='virtio'/></interface>"
        for k in range(NICS)
    )
    return (
        f"<domain type='qemu'><name>vs-p{i}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/><apic/></features>"
        f"<devices>{nics}<memballoon model='none'/></devices></domain>"
    )


def build(n: int, workdir: Path) -> list[str]:
    for br in (BR, SPARE):
        sh("ip", "link", "add", br, "type", "bridge")
        sh("ip", "link", "set", br, "up")
    names = []
    for i in range(n):
        path = workdir / f"vs-p{i}.xml"
        path.write_text(domain_xml(i))
        sh("virsh", "-c", URI, "define", str(path))
        sh("virsh", "-c", URI, "start", "--paused", f"vs-p{i}")
        names.append(f"vs-p{i}")
    return names


def teardown(n: int) -> None:
    for i in range(n):
        sh("virsh", "-c", URI, "destroy", f"vs-p{i}", check=False)
        sh("virsh", "-c", URI, "undefine", f"vs-p{i}", check=False)
    for br in (BR, SPARE):
        sh("ip", "link", "del", br, check=False)


def break_some(names: list[str]) -> dict[tuple[str, int], str]:
    """Break every 10th vif for real; return the verdicts vifscope must give them."""
    expect: dict[tuple[str, int], str] = {}
    faults = [("detached", ("nomaster",)), ("misbound", ("master", SPARE)), ("down", ("down",))]
    n = 0
    for name in names:
        for v in parse_domain_xml(sh("virsh", "-c", URI, "dumpxml", name), DomainState.RUNNING):
            verdict, args = faults[(n // 10) % 3] if n % 10 == 9 else ("bound", ())
            if args and v.target:
                sh("ip", "link", "set", v.target, *args)
            expect[(name, v.index)] = verdict
            n += 1
    return expect


def admin_loop(names: list[str]) -> float:
    t0 = time.perf_counter()
    for name in names:
        out = sh("virsh", "-c", URI, "domiflist", name)
        for line in out.splitlines()[2:]:
            if line.split():
                tap = line.split()[0]
                sh("ip", "link", "show", "dev", tap, check=False)
                sh("bridge", "link", "show", "dev", tap, check=False)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=32)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    precompile()
    ensure_libvirtd()
    workdir = Path("/var/lib/vifscope/bench")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        names = build(args.domains, workdir)
        start_s = (time.perf_counter() - t0) / args.domains
        expect = break_some(names)
        only = [arg for n in names for arg in ("-d", n)]
        cmd = [sys.executable, "-m", "vifscope", "-c", URI, "status", "--json", *only]
        status_s, rss, last = median_runs(cmd, args.runs)
        got = {(v["domain"], v["index"]): v["status"] for v in json.loads(last.stdout)["vifs"]}
        loop_s = statistics.median(admin_loop(names) for _ in range(max(1, args.runs // 2)))
    finally:
        t0 = time.perf_counter()
        teardown(args.domains)
        teardown_s = (time.perf_counter() - t0) / args.domains
    vifs = len(expect)
    broken = sum(1 for v in expect.values() if v != "bound")
    body = (
        f"## Real libvirtd: {args.domains} paused domains x {NICS} NICs (bench/real_paused.py)\n\n"
        f"| vifs | status s | status RSS MB | admin loop s (run in full) | speed-up | verdicts exact |\n"
        f"|---|---|---|---|---|---|\n"
        f"| {vifs} | {status_s:.3f} | {rss / 1024:.0f} | {loop_s:.2f} | {loop_s / status_s:.0f}x "
        f"| {got == expect} ({broken} broken for real) |\n\n"
        f"`virsh start --paused` {start_s:.2f} s per domain; destroy + undefine {teardown_s:.2f} s per domain."
    )
    print(body)
    if not args.no_write:
        write_section("real", body)
    return 0 if got == expect else 1


if __name__ == "__main__":
    sys.exit(main())
