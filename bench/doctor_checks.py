"""How long doctor's checks take at scale, in process: N vifs (taps on 10 bridges, some leases,
neighbours, qdiscs) built with the real parsers, then bind() and evaluate(). Prints numbers only.

    .venv/bin/python bench/doctor_checks.py [--vifs 1280 5000] [--live]

``--live`` also times take_snapshot(deep=False/True) on this host (needs libvirtd; root for nft).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from tests.unit.ipjson import TAKEN_AT, bridge, tap, veth
from vifscope.bind.join import bind
from vifscope.checks import evaluate
from vifscope.model import DeclaredVif, DeviceNode, DeviceNodes, DhcpLease, DomainState, HostFacts, HostSnapshot
from vifscope.sources.kernel.iproute import parse_neighbors, parse_qdiscs
from vifscope.sources.kernel.links import parse_links
from vifscope.sources.kernel.procfs import read_sysctls
from vifscope.sources.libvirt.guestip import merge_guest_addresses


def _mac(i: int) -> str:
    return f"52:54:00:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"


def synthetic(n: int, bridges: int = 10) -> HostSnapshot:
    links: list[dict[str, Any]] = [bridge(f"vs-b{i}") for i in range(bridges)]
    links += [veth(f"vs-u{i}", f"vs-x{i}", master=f"vs-b{i}") for i in range(bridges)]
    vifs = []
    for i in range(n):
        br = f"vs-b{i % bridges}"
        links.append(tap(f"vs-t{i}", master=br, mac=f"fe:{_mac(i)[3:]}"))
        vifs.append(
            DeclaredVif(
                f"vs-d{i // 4}",
                f"uuid-{i // 4}",
                DomainState.RUNNING,
                i % 4,
                "bridge",
                _mac(i),
                model="virtio",
                source=br,
                target=f"vs-t{i}",
                vcpus=2,
            )
        )
    leases = [DhcpLease("net", _mac(i), f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}") for i in range(0, n, 2)]
    neigh = parse_neighbors(
        [
            {"dst": f"11.0.{(i >> 8) & 255}.{i & 255}", "dev": "vs-b0", "lladdr": _mac(i), "state": ["STALE"]}
            for i in range(1, n, 2)
        ]
    )
    qdiscs = parse_qdiscs([{"kind": "noqueue", "handle": "0:", "dev": f"vs-t{i}", "root": True} for i in range(n)])
    node = DeviceNode("/dev/x", True, True, 10, 200, 0o660, "kvm", True)
    facts = HostFacts(
        sysctls=read_sysctls(),
        devices=DeviceNodes(node, node, DeviceNode("/dev/kvm", True, True, 10, 232, 0o660, "kvm", True), 12, True),
        qdiscs=qdiscs,
        neighbors=neigh,
        addresses=(),
        leases=tuple(leases),
        guest_addresses=merge_guest_addresses([v.mac for v in vifs if v.mac], (), leases, neigh),
        nwfilter_bindings=(),
        nwfilters=(),
        network_runtime=(),
        domain_runtime=(),
        interface_extras=(),
    )
    return HostSnapshot("bench", "qemu:///system", TAKEN_AT, vifs=tuple(vifs), links=parse_links(links), facts=facts)


def median(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vifs", type=int, nargs="+", default=[1280, 5000])
    parser.add_argument("--live", action="store_true")
    args = parser.parse_args()
    print(f"{'vifs':>6} {'bind s':>8} {'checks s':>9} {'findings':>9}")
    for n in args.vifs:
        snap = synthetic(n)
        bindings = bind(snap)
        t_bind = median(partial(bind, snap))
        t_checks = median(partial(evaluate, snap, bindings))
        print(f"{n:>6} {t_bind:>8.3f} {t_checks:>9.3f} {len(evaluate(snap, bindings).findings):>9}")
    if args.live:
        from vifscope.sources.snapshot import take_snapshot

        shallow = median(partial(take_snapshot, "qemu:///system"))
        deep = median(partial(take_snapshot, "qemu:///system", deep=True))
        print(f"live take_snapshot: shallow {shallow:.3f} s, deep {deep:.3f} s (median of 5)")


if __name__ == "__main__":
    main()
