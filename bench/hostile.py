"""Hostile names and failed fixes, counted (``make hostile``): RELIABILITY.md's ``rel:names``
and ``rel:failed-fixes`` sections.

Names: every golden-checks case renamed three ways (tests/unit/hostile.py) through every report
(tests/fuzz/pipeline.every_report: status, doctor, graph, exporter) and through every printed
fix (one shell line that runs exactly its argv, checked with /bin/sh); counted here.

Failed fixes: ``--rounds`` times, on a fresh netns host with hostile names
(tests/integration/hostile_host.py), each scenario of tests/integration/test_failed_fixes.py
runs for real, and the host is compared with how it was before by an independent
``ip -j link`` (not vifscope's own look): a fix another process undoes between apply and
verify, a step failing halfway, the audit log full / read-only / filling up mid-run, heal
with a reverter and with a full log.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from benchlib import write_section  # noqa: E402

from tests.fuzz.pipeline import every_report  # noqa: E402
from tests.integration import test_failed_fixes as ff  # noqa: E402
from tests.integration.hostile_host import BR, BR2, T1, T2, T3, HostileHost, hostile_host  # noqa: E402
from tests.unit.hostile import hostile_cases  # noqa: E402
from vifscope.actions import read_records  # noqa: E402
from vifscope.bind.join import bind  # noqa: E402
from vifscope.checks import evaluate  # noqa: E402
from vifscope.report.findings import doctor_report  # noqa: E402

RELIABILITY = ROOT / "RELIABILITY.md"


@dataclass
class Tally:
    runs: int = 0
    as_before: int = 0  # the independent look agrees with the one before the run
    logged_or_refused: int = 0  # every step has its lines, or nothing changed and no line
    outcomes: Counter[str] = field(default_factory=Counter)
    broke: list[str] = field(default_factory=list)


def masters(host: HostileHost) -> dict[str, str | None]:
    return {t: host.master(t) for t in (T1, T2, T3)}


def complete(audit: Path) -> bool:
    """Every apply line has its verify or rollback line (a run's story is whole)."""
    recs = read_records(audit)
    applied = {(r.run, r.target) for r in recs if r.phase == "apply" and r.result == "ok"}
    closed = {(r.run, r.target) for r in recs if r.phase in ("verify", "rollback")}
    return applied <= closed


Result = tuple[str, bool, tuple[str, ...]]  # (outcome, audit log whole or refused, taps unplugged after)


def reverted_fix(host: HostileHost) -> Result:
    host.detach(T1, T2)
    audit = host.dir / "a1.jsonl"
    with ff.reverter(host, T1):
        rc, doc, _ = ff.fix(host, audit)
    return f"exit {rc}, {doc.get('result')}, restored {doc.get('restored')}", complete(audit), (T1, T2)


def halfway(host: HostileHost) -> Result:
    host.detach(T1, T2, T3)
    audit = host.dir / "a2.jsonl"
    doc = host.python(ff.FAIL_HALFWAY, host.uri, str(audit), BR).doc
    host.ip("link", "add", "name", BR, "type", "bridge")  # put the deleted bridge back for "before"
    host.ip("link", "set", "dev", BR, "up")
    return f"{doc['result']}, restored {doc['restored']}", complete(audit), (T1, T2, T3)


def audit_refused(how: str) -> Callable[[HostileHost], Result]:
    def run(host: HostileHost) -> Result:
        host.detach(T1)
        with ff.tmpfs("256k") as fs:
            audit = fs / "actions.jsonl"
            audit.write_text("")
            if how == "full":
                ff.fill(fs)
            else:
                subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
            rc, _doc, _ = ff.fix(host, audit)
            empty = audit.read_text() == ""
        return f"exit {rc}", empty, (T1,)

    return run


def fills_mid_run(host: HostileHost) -> Result:
    host.detach(T1, T2)
    with ff.tmpfs("1m") as fs:
        doc = host.python(ff.FILLS_MID_RUN, host.uri, str(fs / "actions.jsonl")).doc
    # the log could not hold the run: what counts is that nothing it misses was kept
    return f"{doc['result']}, restored {doc['restored']}", doc["result"] == "audit-failed", (T1, T2)


def heal_reverted(host: HostileHost) -> Result:
    host.detach(T1, T2)
    audit = host.dir / "a3.jsonl"
    with ff.reverter(host, T1):
        res = host.python(ff.HEAL, host.uri, str(audit)).doc
    return f"T1 {res[T1][0]}, T2 {res[T2][0]}", complete(audit), (T1,)  # T2 is healed


def heal_full(host: HostileHost) -> Result:
    host.detach(T1)
    with ff.tmpfs("256k") as fs:
        ff.fill(fs)
        res = host.python(ff.HEAL, host.uri, str(fs / "actions.jsonl")).doc
        empty = not (fs / "actions.jsonl").exists() or (fs / "actions.jsonl").read_text() == ""
    return f"{res[T1][0]}", empty, (T1,)


SCENARIOS: dict[str, Callable[[HostileHost], Result]] = {
    "doctor --fix, another process undoes one change before verify": reverted_fix,
    "a step fails halfway (a bridge deleted between plan and apply)": halfway,
    "audit log on a full tmpfs": audit_refused("full"),
    "audit log on a read-only mount": audit_refused("ro"),
    "audit log fills up after the first change": fills_mid_run,
    "heal, another process keeps one tap unplugged (the other heals)": heal_reverted,
    "heal, audit log full": heal_full,
}


def one_round(tally: dict[str, Tally], i: int) -> None:
    for name, scenario in SCENARIOS.items():
        t = tally[name]
        t.runs += 1
        with tempfile.TemporaryDirectory(prefix="vs-h-ff-") as tmp, hostile_host(Path(tmp), f"hb{i}") as host:
            try:
                outcome, log_ok, unplugged = scenario(host)
            except Exception as exc:  # a broken round is counted and shown, the others still run
                t.broke.append(f"round {i}: {type(exc).__name__}: {exc}"[:300])
                continue
            home = {T1: BR, T2: BR, T3: BR2}  # where hostile_host plugged each tap
            expected = {tap: None if tap in unplugged else br for tap, br in home.items()}
            t.outcomes[outcome] += 1
            t.as_before += masters(host) == expected
            t.logged_or_refused += log_ok


def names_section() -> str:
    cases = hostile_cases()
    vifs = fixes = 0
    shown = {n for c in cases for n in c.names.values()}
    started = time.monotonic()
    for case in cases:
        every_report(case.snap)
        bindings = bind(case.snap)
        vifs += len(bindings)
        doc = doctor_report(case.snap, evaluate(case.snap, bindings, case.config), bindings)
        for f in doc["findings"]:
            if f["fix_argv"]:
                fixes += 1
                assert shlex.split(f["fix"], comments=True)[: len(f["fix_argv"][0])] == f["fix_argv"][0]
    took = time.monotonic() - started
    return (
        f"{len(cases)} hosts (every golden-checks case renamed 3 ways), {len(shown)} distinct hostile names, "
        f"{vifs:,} vifs, {fixes:,} printed fixes: every report valid and every name read back "
        f"({took:.0f} s). 0 failures."
    )


def failed_section(tally: dict[str, Tally], rounds: int) -> str:
    rows = [
        "| scenario | runs | host as before (independent `ip -j link`) "
        "| audit log whole, or refused with no line | outcome | broke |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for name, t in tally.items():
        outcomes = "; ".join(f"{o} ×{n}" for o, n in t.outcomes.most_common())
        rows.append(f"| {name} | {t.runs} | {t.as_before} | {t.logged_or_refused} | {outcomes} | {len(t.broke)} |")
    broke = [b for t in tally.values() for b in t.broke]
    tail = ["", "Broken rounds:", *(f"- `{b}`" for b in broke[:20])] if broke else []
    return "\n".join([f"{rounds} rounds, each scenario on a fresh netns host with hostile names.", "", *rows, *tail])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    names = names_section()
    print(names, flush=True)
    tally = {name: Tally() for name in SCENARIOS}
    for i in range(args.rounds):
        one_round(tally, i)
        print(f"round {i + 1}/{args.rounds} done", flush=True)
    failed = failed_section(tally, args.rounds)
    print(failed)
    if not args.no_write:
        write_section("names", names, path=RELIABILITY, tag="rel")
        write_section("failed-fixes", failed, path=RELIABILITY, tag="rel")
    bad = any(t.broke or t.as_before != t.runs or t.logged_or_refused != t.runs for t in tally.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
