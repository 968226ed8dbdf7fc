"""``qos set --backend tc`` on a real busybox TCG guest (vifscope.lab.qosguest): first the
guest's unshaped rate each way (guest outbound: busybox ``dd if=/dev/zero | nc`` to a sink in
a namespace; guest inbound: a Python sender in the namespace to busybox ``nc -l``), then each
cap (well below the unshaped outbound) set with ``vifscope qos set --backend tc`` and measured
past the shaper over --seconds. Writes the "qos-guest" section of BENCHMARKS.md.

Run as root: ``.venv/bin/python bench/qos_guest.py`` (about 1 min boot + 2 x (1 + caps) x 15 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import write_section

from vifscope.lab.qosguest import QosGuest, vifscope


def shaped(g: QosGuest, mbit: float, seconds: float, audit: str) -> list[dict[str, object]]:
    kbytes = round(mbit * 1e6 / 8000)  # libvirt's kB/s
    done = vifscope(
        "qos", "set", g.domain, "--mac", g.mac, "--backend", "tc", "--live",
        "--inbound", str(kbytes), "--outbound", str(kbytes), "--audit-log", audit, "--json",
    )  # fmt: skip
    status = json.loads(done.stdout)["status"] if done.stdout else done.stderr.strip()
    cap = kbytes * 8000
    rows = []
    for direction in ("outbound", "inbound"):
        got = g.outbound(seconds) if direction == "outbound" else g.inbound(seconds)
        rows.append({"cap_mbit": cap / 1e6, "direction": direction, "status": status, "mbit": got / 1e6})
    return rows


def table(free: dict[str, float], rows: list[dict[str, object]], seconds: float) -> str:
    out = [
        "## `qos set --backend tc` on a real TCG guest (bench/qos_guest.py)",
        "",
        "One busybox guest (TCG, 1 vCPU, virtio-net) on a bridge of its own with a namespace as its",
        "peer. Guest outbound: `dd if=/dev/zero bs=64k | nc` in the guest (typed on its serial console)",
        "to a sink in the namespace, counted as tx bytes of the bridge's veth towards the namespace;",
        "guest inbound: a sender in the namespace to `nc -l` in the guest, counted as tx bytes of the",
        f"tap. Both past the shaper, whole frames (as htb counts), over {seconds:.0f} s after 3 s of",
        f"warm-up. Unshaped: outbound {free['outbound']:.1f} Mbit/s, inbound {free['inbound']:.1f} Mbit/s.",
        "",
        "| cap | direction | qos set | measured (Mbit/s) | of the cap | within ±10 % | cap / unshaped |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cap, got = float(r["cap_mbit"]), float(r["mbit"])  # type: ignore[arg-type]
        ratio, d = got / cap, str(r["direction"])
        out.append(
            f"| {cap:g} Mbit/s | {d} | {r['status']} | {got:.2f} | {ratio:.1%} "
            f"| {'yes' if abs(ratio - 1) <= 0.10 else 'NO'} | {cap / free[d]:.0%} |"
        )
    out += ["", f"1-minute load average at the end: {os.getloadavg()[0]:.1f} (other sessions share the 2 cores)."]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rates", default="4,10", help="caps in Mbit/s")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--prefix", default=os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-r-"))
    ap.add_argument("--net", default=os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.90"))
    args = ap.parse_args()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, QosGuest(args.prefix, args.net) as g:
        free = {"outbound": g.outbound(args.seconds) / 1e6, "inbound": g.inbound(args.seconds) / 1e6}
        print(json.dumps(free), flush=True)
        for mbit in (float(r) for r in args.rates.split(",")):
            rows += shaped(g, mbit, args.seconds, str(Path(tmp) / "audit.jsonl"))
            print(json.dumps(rows[-2:]), flush=True)
        vifscope("qos", "set", g.domain, "--mac", g.mac, "--backend", "tc", "--live", "--clear",
                 "--audit-log", str(Path(tmp) / "audit.jsonl"))  # fmt: skip
    write_section("qos-guest", table(free, rows, args.seconds))


if __name__ == "__main__":
    main()
