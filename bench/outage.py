"""Dying and hung sources: libvirtd and ovsdb-server SIGKILLed and SIGSTOPped under the daemons.

A synthetic host (vifscope.lab.synth: N domains x 4 NICs, real bridges and held taps in the
netns vs-o-out) is served by a PRIVATE libvirtd (vifscope.lab.private: its own sockets, state
and namespaces; libvirt's test driver reading the node file) and a PRIVATE ovsdb-server (its own
database; OVS_RUNDIR points vifscope at it). The host's own daemons are never signalled.
``vifscope exporter``, ``vifscope serve`` and ``vifscope watch --heal`` run in the namespace; a
probe process there scrapes /metrics and reads /api/v1/vifs every --period seconds throughout.

Scenarios: libvirtd SIGKILL x --kills (down --down seconds each, then started again) and
SIGSTOP for --hang seconds (hung: its socket accepts, nothing answers); the same for
ovsdb-server. During every libvirtd outage one tap is detached (``ip link set TAP nomaster``):
watch must report it, and heal it once libvirtd is back. Then a storm of --storm link events
(a bridge flipped up/down by one ``ip -batch``) with 8 vif changes mixed in, against a plain
``watch --json``: once as it comes, once with watch SIGSTOPped through it, so its netlink socket
overflows (ENOBUFS); afterwards watch's view of every vif must equal ``vifscope status``.

Figures: outages survived, answers during the outages (and how many within the scrape
deadline, saying the source is down), recovery time p50/p99 per daemon (from the restart /
SIGCONT to its first healthy answer), heal time of the tap detached meanwhile, overflows and
missed transitions. Writes the "outage" section of RELIABILITY.md; exits 1 when a bound fails.
``make outage`` (as root): ``.venv/bin/python bench/outage.py [--kills 10] [--hang 30]``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outage_report import RELIABILITY, failed, section, write_section

from vifscope.lab.private import PrivateLibvirtd, PrivateOvsdb, ovs_env, wait_until
from vifscope.lab.synth import SynthHost, plan

NS = "vs-o-out"
PREFIX = "vs-o-"
PROBE = Path(__file__).resolve().parent / "outage_probe.py"
DEADLINE = 10.0  # the scrape deadline the probe sends (Prometheus' default scrape_timeout)
LOG_DIR = Path("/tmp")  # watch's lines of the last run: /tmp/vs-o-outage-watch.jsonl
RECOVERY_LIMIT = 120.0  # a daemon not healthy this long after its source returned has not recovered
VIEW_AGE = 1.0  # serve answers from a snapshot up to this old (its default interval)


@dataclass
class Lines:
    """A child's JSON lines, each with the monotonic time it arrived."""

    proc: subprocess.Popen[str]
    items: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    log: Path | None = None  # every line also goes here, stamped (to read a run afterwards)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("w") if self.log else open("/dev/null", "w") as log:
            for line in self.proc.stdout:
                if line.startswith("{"):
                    self.items.append((time.monotonic(), json.loads(line)))
                    log.write(f"{time.monotonic():.3f} {line}")
                    log.flush()

    def since(self, t: float) -> list[tuple[float, dict[str, Any]]]:
        return [(at, d) for at, d in list(self.items) if at >= t]


def in_ns(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *argv]


def vifscope_argv(uri: str, *args: str) -> list[str]:
    return in_ns(sys.executable, "-m", "vifscope", "-c", uri, *args)


@contextmanager
def started(argv: list[str], env: dict[str, str], stdin: bool = False) -> Any:
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=True, env=env
    )
    try:
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def listening(proc: subprocess.Popen[str]) -> str:
    """The base URL a ``--json --listen 127.0.0.1:0`` daemon prints first."""
    assert proc.stdout is not None
    url = str(json.loads(proc.stdout.readline())["url"])
    return url[: url.index("/", len("http://"))]


def ip(*args: str) -> None:
    subprocess.run(["ip", "-n", NS, *args], check=True, capture_output=True)


@dataclass
class Rig:
    """Everything running: the sources, the three daemons, the probe."""

    libvirtd: PrivateLibvirtd
    ovsdb: PrivateOvsdb
    uri: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[str]]
    probe: Lines
    watch: Lines
    bridges: dict[str, str]  # tap -> its bridge

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.procs.items()}


def healthy_metrics(d: dict[str, Any], source: str) -> bool:
    return d.get("kind") == "metrics" and d.get("status") == 200 and bool(d.get("up", {}).get(source))


def healthy_api(d: dict[str, Any], source: str) -> bool:
    return d.get("kind") == "api" and d.get("status") == 200 and source not in d.get("down", ["?"])


def first_after(lines: Lines, t: float, ok: Any) -> float | None:
    """Seconds from ``t`` to the end of the first answer started after ``t`` that ``ok`` accepts."""
    for _at, d in lines.since(t):
        if d.get("start", 0) >= t and ok(d):
            return float(d["end"]) - t
    return None


def watch_after(lines: Lines, t: float, ok: Any) -> float | None:
    return next((at - t for at, d in lines.since(t) if ok(d)), None)


def recovery(rig: Rig, source: str, t_up: float, tap: str | None, t_detach: float) -> dict[str, float | None]:
    """Per daemon: seconds from the source's return to its first healthy answer (None: never).
    The heal of the tap detached meanwhile counts from the return too, 0 when it came before
    (a hung libvirtd is only known hung once keepalive gives up: heal may run before that)."""
    got: dict[str, float | None] = {}

    def done() -> bool:
        got["exporter"] = first_after(rig.probe, t_up, lambda d: healthy_metrics(d, source))
        got["serve"] = first_after(rig.probe, t_up, lambda d: healthy_api(d, source))
        got["watch"] = watch_after(
            rig.watch, t_up, lambda d: d.get("event") == "source" and d["source"] == source and d["state"] == "up"
        )
        if tap is not None:
            healed = watch_after(
                rig.watch, t_detach, lambda d: d.get("event") == "heal" and d["target"] == tap and d["result"] == "ok"
            )
            got["heal"] = None if healed is None else max(0.0, t_detach + healed - t_up)
        return all(v is not None for v in got.values())

    wait_until(done, RECOVERY_LIMIT, step=0.05)
    return got


def during(rig: Rig, source: str, t0: float, t1: float) -> dict[str, Any]:
    """The answers the probe started while the source was away."""
    answers = [d for _at, d in rig.probe.since(t0) if t0 <= d.get("start", 0) < t1 and d["kind"] != "ready"]
    metrics = [d for d in answers if d["kind"] == "metrics"]
    api = [d for d in answers if d["kind"] == "api"]
    return {
        "scrapes": len(metrics),
        "scrapes_in_deadline": sum(1 for d in metrics if d.get("status") == 200 and d["end"] - d["start"] <= DEADLINE),
        "scrapes_source_down": sum(1 for d in metrics if d.get("status") == 200 and d["up"].get(source) is False),
        "scrape_failures": [d.get("error") or d.get("status") for d in metrics if d.get("status") != 200],
        "api": len(api),
        "api_source_errors": sum(1 for d in api if source in d.get("down", ())),
        # Past serve's view age every answer comes from a snapshot taken during the outage.
        "api_late": sum(1 for d in api if d["start"] >= t0 + VIEW_AGE),
        "api_late_source_errors": sum(1 for d in api if d["start"] >= t0 + VIEW_AGE and source in d.get("down", ())),
        "api_failures": [d.get("error") or d.get("status") for d in api if d.get("status") not in (200, 503)],
        "slowest_s": max((d["end"] - d["start"] for d in answers), default=0.0),
    }


def outage(rig: Rig, source: str, how: str, seconds: float, tap: str | None) -> dict[str, Any]:
    daemon = rig.libvirtd if source == "libvirt" else rig.ovsdb
    t_down = time.monotonic()
    daemon.kill() if how == "kill" else daemon.signal(signal.SIGSTOP)
    t_detach = time.monotonic()
    if tap is not None:
        ip("link", "set", tap, "nomaster")
    time.sleep(seconds)
    t_up = time.monotonic()
    daemon.start() if how == "kill" else daemon.signal(signal.SIGCONT)
    rec = recovery(rig, source, t_up, tap, t_detach)
    out = {"source": source, "how": how, "seconds": t_up - t_down, "recovery": rec, "alive": rig.alive()}
    out["watch_saw_down_s"] = watch_after(
        rig.watch, t_down, lambda d: d.get("event") == "source" and d["source"] == source and d["state"] == "down"
    )
    out |= during(rig, source, t_down, t_up)
    if tap is not None:  # watch must see the detach while libvirt is away (netlink is not)
        seen = watch_after(
            rig.watch, t_detach, lambda d: d.get("event") == "transition" and d["target"] == tap and d["to"] != "bound"
        )
        out["detach_seen_s"] = seen
        master = json.loads(subprocess.run(["ip", "-n", NS, "-j", "link", "show", tap], capture_output=True,
                                           text=True, check=True).stdout)[0].get("master")  # fmt: skip
        out["healed"] = master == rig.bridges[tap]
    print(json.dumps(out), file=sys.stderr)
    return out


def scenarios(rig: Rig, kills: int, down: float, hang: float) -> list[dict[str, Any]]:
    taps = iter(sorted(rig.bridges, key=lambda t: int(t.removeprefix(f"{PREFIX}t"))))
    runs = [outage(rig, "libvirt", "kill", down, next(taps)) for _ in range(kills)]
    runs.append(outage(rig, "libvirt", "stop", hang, next(taps)))
    runs += [outage(rig, "ovs", "kill", down, None) for _ in range(kills)]
    runs.append(outage(rig, "ovs", "stop", hang, None))
    return runs


def wait_healthy(rig: Rig, what: str) -> None:
    t = time.monotonic()
    ok = wait_until(
        lambda: (
            first_after(rig.probe, t, lambda d: healthy_metrics(d, "libvirt") and d["up"].get("ovs")) is not None
            and first_after(rig.probe, t, lambda d: healthy_api(d, "libvirt") and "ovs" not in d["down"]) is not None
        ),
        RECOVERY_LIMIT,
    )
    if not ok:
        raise RuntimeError(f"the daemons are not healthy {what}")


def run(domains: int, kills: int, down: float, hang: float, storm: int, period: float) -> dict[str, Any]:
    from storm import storms

    p = plan(domains=domains, nics=4, bridges=4, fault_every=10**9, shutoff_every=10**9, prefix=PREFIX)
    with ExitStack() as stack:
        host = stack.enter_context(SynthHost(p, NS))
        ip("link", "set", "lo", "up")
        libvirtd, ovsdb = stack.enter_context(PrivateLibvirtd()), stack.enter_context(PrivateOvsdb())
        libvirtd.start()
        ovsdb.start()
        uri, env = libvirtd.uri(host.node_file), ovs_env(ovsdb)
        audit = str(host.dir / "audit.jsonl")
        listen = ("--json", "--listen", "127.0.0.1:0", "--audit-log", audit)
        exporter = stack.enter_context(started(vifscope_argv(uri, "exporter", *listen), env))
        serve = stack.enter_context(started(vifscope_argv(uri, "serve", *listen), env))
        watch = stack.enter_context(started(vifscope_argv(uri, "watch", "--json", "--heal", "--audit-log", audit), env))
        urls = (listening(exporter), listening(serve))
        probe = stack.enter_context(started(in_ns(sys.executable, str(PROBE), *urls, str(period), str(DEADLINE)),
                                            env, stdin=True))  # fmt: skip
        procs = {"exporter": exporter, "serve": serve, "watch": watch}
        watch_lines = Lines(watch, log=LOG_DIR / "vs-o-outage-watch.jsonl")
        rig = Rig(libvirtd, ovsdb, uri, env, procs, Lines(probe), watch_lines, {v.tap: v.bridge for v in p.vifs})
        wait_healthy(rig, "at the start")
        runs = scenarios(rig, kills, down, hang)
        alive = rig.alive()
        watch.terminate()
        storm_runs = storms(NS, uri, env, p, storm)
    return {"vifs": len(p.vifs), "kills": kills, "down": down, "hang": hang, "period": period, "deadline": DEADLINE,
            "runs": runs, "alive": alive, "storms": storm_runs}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=25, help="x4 NICs (default 25: 100 vifs)")
    ap.add_argument("--kills", type=int, default=10, help="SIGKILLs of each daemon (default 10)")
    ap.add_argument("--down", type=float, default=3.0, help="seconds a killed daemon stays down (default 3)")
    ap.add_argument("--hang", type=float, default=30.0, help="seconds of SIGSTOP (default 30)")
    ap.add_argument("--storm", type=int, default=10_000, help="link events in the storm (default 10,000)")
    ap.add_argument("--period", type=float, default=0.25, help="seconds between a prober's requests")
    ap.add_argument("--no-write", action="store_true", help=f"print only, leave {RELIABILITY.name} alone")
    args = ap.parse_args()
    result = run(args.domains, args.kills, args.down, args.hang, args.storm, args.period)
    body = section(result)
    print(body)
    if not args.no_write:
        write_section(body)
    why = failed(result)
    print("\n".join(why) or "pass", file=sys.stderr)
    return 1 if why else 0


if __name__ == "__main__":
    sys.exit(main())
