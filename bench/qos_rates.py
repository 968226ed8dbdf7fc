"""``qos set --backend tc`` against real traffic: vifscope.lab.qoslink's two namespaces (veth
pairs, the host end of each playing a tap, declared as a test-driver domain's interface),
iperf3 single TCP streams. For each cap (default 2, 20, 200 Mbit/s) and direction (guest
inbound: the tap's egress htb; guest outbound: the tap's ingress redirected to an ifb with htb)
the shaped vif is measured over --seconds, then the neighbouring, unshaped vif in the same
direction. Writes the "qos-rates" section of BENCHMARKS.md.

Run as root: ``.venv/bin/python bench/qos_rates.py`` (about 2 x 3 x (10 + 3) s).
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

from vifscope.lab.qoslink import QosLink


def measure(lab: QosLink, uri: str, mbit: float, seconds: float, audit: str) -> tuple[str, list[dict[str, object]]]:
    shaped, neighbour = lab.pairs
    kbytes = round(mbit * 1e6 / 8000)  # libvirt's kB/s
    done = lab.vifscope(
        uri, "qos", "set", shaped.domain, "--mac", shaped.mac, "--backend", "tc",
        "--inbound", str(kbytes), "--outbound", str(kbytes), "--audit-log", audit, "--json",
    )  # fmt: skip
    doc = json.loads(done.stdout) if done.stdout else {"status": done.stderr.strip(), "commands": []}
    status = doc["status"]
    uri = lab.remember(doc)  # the next cap replaces this one: vifscope must know it made it
    rows = []
    for inbound in (True, False):
        got = lab.iperf(shaped, inbound=inbound, seconds=seconds)
        free = lab.iperf(neighbour, inbound=inbound, seconds=3)
        cap = kbytes * 8000
        rows.append({
            "cap_mbit": cap / 1e6, "direction": "inbound" if inbound else "outbound", "status": status,
            "shaped_mbit": got / 1e6, "ratio": got / cap, "neighbour_mbit": free / 1e6,
        })  # fmt: skip
    return uri, rows


def table(rows: list[dict[str, object]], seconds: float) -> str:
    out = [
        "## `qos set --backend tc` under real traffic (bench/qos_rates.py)",
        "",
        "Two network namespaces joined by veth pairs; the host end of one plays a tap, declared as a",
        "running test-driver domain's interface, and `vifscope qos set --backend tc` caps it both ways",
        "(guest inbound: htb on the tap's egress; guest outbound: the tap's ingress redirected by u32 +",
        "mirred to an ifb device with htb). iperf3 3.12, one TCP stream, receiver's rate; the",
        f"shaped vif over {seconds:.0f} s, then the neighbouring unshaped vif over 3 s in the same",
        "direction. htb counts whole frames (Ethernet + IP + TCP headers), iperf3 reports TCP payload:",
        "expect ~95 % of the cap at 1,500-byte MTU.",
        "",
        "| cap | direction | qos set | shaped (Mbit/s) | of the cap | within ±10 % | neighbour unshaped (Mbit/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = float(r["ratio"])  # type: ignore[arg-type]
        out.append(
            f"| {r['cap_mbit']:g} Mbit/s | {r['direction']} | {r['status']} | {float(r['shaped_mbit']):.2f} "  # type: ignore[arg-type]
            f"| {ratio:.1%} | {'yes' if abs(ratio - 1) <= 0.10 else 'NO'} | {float(r['neighbour_mbit']):.0f} |"  # type: ignore[arg-type]
        )
    load = os.getloadavg()[0]
    out += ["", f"1-minute load average at the end: {load:.1f} (other sessions share the 2 cores)."]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rates", default="2,20,200", help="caps in Mbit/s")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--prefix", default=os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-r-") + "b")
    ap.add_argument("--net", default=os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.90"))
    args = ap.parse_args()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, QosLink(args.prefix, args.net, 2, Path(tmp)) as lab:
        uri = lab.write_node()
        for mbit in (float(r) for r in args.rates.split(",")):
            uri, got = measure(lab, uri, mbit, args.seconds, str(Path(tmp) / "audit.jsonl"))
            rows += got
            print(json.dumps(rows[-2:]))
    write_section("qos-rates", table(rows, args.seconds))


if __name__ == "__main__":
    main()
