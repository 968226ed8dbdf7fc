"""The netlink storm of bench/outage.py: 10,000 link events with vif changes mixed in.

A plain ``vifscope watch --json`` (no --heal: the changes must stay as made) runs in the
namespace. One ``ip -batch`` flips a bridge that is no vif's up and down, and, spread through
the burst, detaches four taps and sets four others down. Run twice: as it comes, and with watch
SIGSTOPped until the batch is through (a reader that is not scheduled: the kernel drops what
its 8 MiB receive buffer cannot hold and the next read says ENOBUFS). Afterwards watch's view
of every vif (its start verdicts plus every transition it printed) is compared with a fresh
``vifscope status --json``: a vif where they differ is a missed transition.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

from outage import Lines, ip, started, vifscope_argv

from vifscope.lab.private import wait_until
from vifscope.lab.synth import SynthPlan

STORM_BRIDGE = "vs-o-storm"
CHANGES = 8  # vifs changed inside each burst: half detached, half set down
SETTLE = 60.0


def truth(uri: str, env: dict[str, str]) -> dict[str, str]:
    """tap -> verdict, as ``vifscope status`` gives it now."""
    out = subprocess.run(vifscope_argv(uri, "status", "--json"), capture_output=True, text=True, env=env, check=False)
    return {v["target"]: v["status"] for v in json.loads(out.stdout)["vifs"]}


def view(lines: Lines, start: dict[str, str]) -> dict[str, str]:
    """What watch has said: the verdicts at its start, then each transition in order."""
    seen = dict(start)
    for _at, d in list(lines.items):
        if d.get("event") == "transition" and d.get("target"):
            seen[d["target"]] = d["to"]
    return seen


def batch(events: int, changes: list[str]) -> str:
    """``ip -batch`` text: events/2 up/down flips of the storm bridge, the changes spread through."""
    flips = max(1, events // 2)
    at = {flips * (i + 1) // (len(changes) + 1): line for i, line in enumerate(changes)}
    lines: list[str] = []
    for i in range(flips):
        if i in at:
            lines.append(at[i])
        lines.append(f"link set {STORM_BRIDGE} up\nlink set {STORM_BRIDGE} down")
    return "\n".join(lines) + "\n"


def one_storm(ns: str, uri: str, env: dict[str, str], lines: Lines, start: dict[str, str], taps: list[str],
              events: int, stop_watch: bool) -> dict[str, Any]:  # fmt: skip
    half = len(taps) // 2
    changes = [f"link set {t} nomaster" for t in taps[:half]] + [f"link set {t} down" for t in taps[half:]]
    mark = time.monotonic()
    if stop_watch:
        lines.proc.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch(events, changes), text=True, check=True)
    sent = time.monotonic() - t0
    if stop_watch:
        lines.proc.send_signal(signal.SIGCONT)
    now = truth(uri, env)
    settled = wait_until(lambda: view(lines, start) == now, SETTLE, step=0.1)
    took = time.monotonic() - t0
    seen = view(lines, start)
    overruns = [d for at, d in lines.since(mark) if d.get("event") == "overrun"]
    result = {
        "stopped": stop_watch, "events": events, "changed": len(taps), "sent_s": sent, "settled_s": took,
        "settled": settled, "overruns": len(overruns), "missed": sum(1 for t in now if seen.get(t) != now[t]),
        "changed_seen": sum(1 for t in taps if seen.get(t) == now.get(t) != "bound"),
    }  # fmt: skip
    print(json.dumps(result), file=sys.stderr)
    return result


def restore(ns: str, uri: str, env: dict[str, str], lines: Lines, start: dict[str, str], p: SynthPlan,
            taps: list[str]) -> None:  # fmt: skip
    bridge = {v.tap: v.bridge for v in p.vifs}
    for t in taps:
        subprocess.run(["ip", "-n", ns, "link", "set", t, "master", bridge[t], "up"], check=True)
    wait_until(lambda: view(lines, start) == truth(uri, env) == start, SETTLE, step=0.2)


def storms(ns: str, uri: str, env: dict[str, str], p: SynthPlan, events: int) -> list[dict[str, Any]]:
    ip("link", "add", STORM_BRIDGE, "type", "bridge")
    taps = [v.tap for v in p.vifs][-2 * CHANGES :]
    with started(vifscope_argv(uri, "watch", "--json"), env) as proc:
        lines = Lines(proc)
        if not wait_until(lambda: any(d.get("event") == "start" for _a, d in lines.items), 60):
            raise RuntimeError("watch did not start")
        start = truth(uri, env)
        results = []
        for i, stop_watch in enumerate((False, True)):
            mine = taps[i * CHANGES : (i + 1) * CHANGES]
            results.append(one_storm(ns, uri, env, lines, start, mine, events, stop_watch))
            restore(ns, uri, env, lines, start, p, mine)
        results[-1]["alive"] = proc.poll() is None
    return results


if __name__ == "__main__":
    sys.exit("run bench/outage.py")
