"""The "outage" section of RELIABILITY.md, from bench/outage.py's result (pure but for the write)."""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

RELIABILITY = Path(__file__).resolve().parent.parent / "RELIABILITY.md"
DAEMONS = ("exporter", "serve", "watch", "heal")
NOTE = """\
The odd answer during an outage that still says the source is up is, as far as we can tell, one
that shared a collection or snapshot begun before the signal (single-flight: a request arriving
while one runs gets its answer); not proven answer by answer."""
# What the first runs of this benchmark found, and what the daemons do since (kept with the figures).
FOUND = """\
What the first runs found, and what happens now:

- `watch` and a hung libvirtd: the engine thread blocked in libvirt's open (no deadline) and in
  a domain read until keepalive gave up (~20 s), so a tap detached during a 20 s hang was printed
  20 s late. Now connect and narrow reads get 5 s, a full resync 15 s, each on a worker thread
  (a stuck call keeps one thread; no second one is started), and a lost connection is closed
  off the engine's thread.
- `watch` and a hung ovsdb-server: never noticed (its OVSDB monitor waited on the socket; only
  the 60 s resync would have asked). Now the monitor sends an echo after 5 s of silence and
  reports the source down if that goes unanswered for 5 s more, as OVS' own clients do. The
  engine then took ~5 s more, re-asking through `ovs-vsctl` until its timeout (14 s in all, and
  the engine held meanwhile); it takes the monitor's word now.
- A heal pass whose check had just found libvirtd hung went on to heal in the same pass; now
  its heal stage also waits for libvirt.
- `watch` reconnected with a back-off growing to 30 s: 4 s after a 3 s outage. Capped at 5 s
  now (a connect attempt to a local socket is cheap).
- A hung OVSDB's `ovs-vsctl --timeout` surfaced as `fatal_signal|WARN|terminating with signal 14
  (Alarm clock)`; now `ovs-vsctl: no answer from ovsdb-server within 5 s`.
- A netlink overflow (ENOBUFS) already led to a full re-dump, silently; now `watch` prints an
  `overrun` line with a running count first.
- Harness: the synthetic host's test-driver domains had no `<uuid>`, so each connection invented
  new ones and heal's re-read found its domain gone (real domains always have one): fixed in
  `vifscope.lab.synth`.
"""


def quantile(values: list[float], q: int) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.quantiles(values, n=100, method='inclusive')[q - 1]:.2f}"


def group(runs: list[dict[str, Any]], source: str, how: str) -> list[dict[str, Any]]:
    return [r for r in runs if r["source"] == source and r["how"] == how]


def row(name: str, runs: list[dict[str, Any]]) -> str:
    survived = sum(1 for r in runs if all(r["alive"].values()) and all(v is not None for v in r["recovery"].values()))
    scrapes = sum(r["scrapes"] for r in runs)
    cells = [
        name,
        f"{survived} / {len(runs)}",
        f"{scrapes:,}",
        f"{sum(r['scrapes_in_deadline'] for r in runs):,}",
        f"{sum(r['scrapes_source_down'] for r in runs):,}",
        f"{sum(r['api'] for r in runs):,} / {sum(r['api_source_errors'] for r in runs):,}",
        f"{sum(r['api_late'] for r in runs):,} / {sum(r['api_late_source_errors'] for r in runs):,}",
        saw_down(runs),
        f"{max((r['slowest_s'] for r in runs), default=0):.2f}",
    ]
    for d in DAEMONS:
        got = [r["recovery"][d] for r in runs if r["recovery"].get(d) is not None]
        missing = sum(1 for r in runs if d in r["recovery"] and r["recovery"][d] is None)
        cells.append("-" if not got and not missing else f"{quantile(got, 50)} / {quantile(got, 99)}"
                     + (f" ({missing} never)" if missing else ""))  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def saw_down(runs: list[dict[str, Any]]) -> str:
    seen = [r["watch_saw_down_s"] for r in runs if r.get("watch_saw_down_s") is not None]
    missing = len(runs) - len(seen)
    return (f"{quantile(seen, 50)} / {max(seen):.2f}" if seen else "-") + (f" ({missing} never)" if missing else "")


def failed(result: dict[str, Any]) -> list[str]:
    """Why the run fails (empty: it passes)."""
    why: list[str] = []
    for i, r in enumerate(result["runs"]):
        what = f"{r['source']} {r['how']} #{i}"
        why += [f"{what}: {d} died" for d, ok in r["alive"].items() if not ok]
        why += [f"{what}: {d} did not recover" for d, v in r["recovery"].items() if v is None]
        if r["scrape_failures"] or r["api_failures"]:
            why.append(f"{what}: failed answers {r['scrape_failures'][:3]} {r['api_failures'][:3]}")
        if r["scrapes_in_deadline"] != r["scrapes"]:
            why.append(f"{what}: {r['scrapes'] - r['scrapes_in_deadline']} scrapes past the deadline")
        if r.get("healed") is False:
            why.append(f"{what}: the tap detached meanwhile was not healed")
    for s in result["storms"]:
        if s["missed"]:
            why.append(f"storm (watch stopped: {s['stopped']}): {s['missed']} missed transitions")
        if s["stopped"] and not s["overruns"]:
            why.append("storm with watch stopped: no overflow reported")
    return why


def storm_rows(storms: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| storm | link events | vif changes in it | overflows reported | changes seen | missed transitions"
        " | settled after |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in storms:
        name = "watch SIGSTOPped through the burst" if s["stopped"] else "as it comes"
        rows.append(f"| {name} | {s['events']:,} | {s['changed']} | {s['overruns']} | {s['changed_seen']} "
                    f"| {s['missed']} | {s['settled_s']:.1f} s |")  # fmt: skip
    return rows


def section(result: dict[str, Any]) -> str:
    runs = result["runs"]
    k = result["kills"]
    table = [
        "| outage | survived | scrapes during | in deadline | saying source_up 0 | API answers / with source_errors"
        " | of them past serve's 1 s view age | watch said down after s p50 / max | slowest answer s"
        " | recovery s p50 / p99: exporter | serve | watch | heal of the tap detached meanwhile |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        row(f"libvirtd SIGKILL x{k} ({result['down']:.0f} s down)", group(runs, "libvirt", "kill")),
        row(f"libvirtd SIGSTOP ({result['hang']:.0f} s hung)", group(runs, "libvirt", "stop")),
        row(f"ovsdb-server SIGKILL x{k} ({result['down']:.0f} s down)", group(runs, "ovs", "kill")),
        row(f"ovsdb-server SIGSTOP ({result['hang']:.0f} s hung)", group(runs, "ovs", "stop")),
    ]
    detach = [r["detach_seen_s"] for r in runs if r.get("detach_seen_s") is not None]
    healed = sum(1 for r in runs if r.get("healed"))
    with_tap = sum(1 for r in runs if "healed" in r)
    why = failed(result)
    return "\n".join([
        "## Dying and hung sources (bench/outage.py, `make outage`)",
        "",
        f"Synthetic host: {result['vifs']} vifs in the netns `vs-o-out`, served by a private libvirtd (test driver",
        "over its own socket, own mount and network namespace) and a private ovsdb-server (own database,",
        "`OVS_RUNDIR`); the host's daemons are never signalled. `exporter`, `serve` and `watch --heal` run with",
        f"their default flags; a probe scrapes /metrics (deadline header {result['deadline']:.0f} s) and reads",
        f"/api/v1/vifs every {result['period']} s throughout. A killed daemon is started again after",
        f"{result['down']:.0f} s; a stopped one gets SIGCONT after {result['hang']:.0f} s. During each libvirtd",
        "outage one tap is detached. Recovery: from the restart / SIGCONT to the daemon's first healthy",
        "answer (a scrape with `vifscope_source_up` 1, an API answer without that source in",
        "`source_errors`, watch's `source ... up` line, watch's `heal` line for that tap; 0 when it came",
        "before). serve answers from a snapshot up to 1 s old (its `interval`): answers in an outage's first",
        "second may carry the snapshot from before it, so the column after counts the later ones.",
        "",
        *table,
        "",
        NOTE,
        "",
        f"Detaches made while libvirtd was away: {with_tap}; watch reported each after "
        f"p50 {quantile(detach, 50)} s / max {max(detach, default=0):.2f} s (netlink was up), and healed "
        f"{healed} of {with_tap} once libvirtd was back.",
        "",
        "Netlink storm (`bench/storm.py`) against a plain `watch --json`; missed transitions: vifs where",
        "watch's last word differs from a fresh `vifscope status` once the host is quiet:",
        "",
        *storm_rows(result["storms"]),
        "",
        FOUND,
        f"Daemons alive at the end: {'yes' if all(result['alive'].values()) else result['alive']}. "
        f"Result: {'; '.join(why) if why else 'pass'}.",
    ])  # fmt: skip


def write_section(body: str) -> None:
    """Replace (or append) our section between <!-- rel:outage --> markers; nothing else is touched."""
    start, end = "<!-- rel:outage -->", "<!-- /rel:outage -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = RELIABILITY.read_text() if RELIABILITY.exists() else "# vifscope reliability\n\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    RELIABILITY.write_text(text)
