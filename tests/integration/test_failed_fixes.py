"""Failed fixes on real kernel objects (a private netns, hostile names; see hostile_host.py):
the host ends as it was, checked on a fresh look; the audit log has every step or the run
refuses to start; the exit code says which (cli/fix.py: 0 / 1 / 3 / 4).

- a step that fails halfway: the host changes between plan and apply (a bridge vanishes);
- a verification that fails: another process undoes the change right after apply;
- the audit log on a real tmpfs that is full, or mounted read-only, or that fills up mid-run.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.hostile_host import API_HEAL, BR, D1, MAC, T1, T2, T3, HostileHost, hostile_host
from vifscope.actions import read_records

pytestmark = pytest.mark.integration


@pytest.fixture()
def host(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HostileHost]:
    with hostile_host(tmp_path, f"ff{abs(hash(request.node.name)) % 10000}") as h:
        yield h
        assert not h.pwned()  # no name ever reached a shell


def fix(host: HostileHost, audit: Path) -> tuple[int, dict[str, Any], str]:
    ran = host.vifscope("doctor", "--fix", "--yes", "--json", "--audit-log", str(audit))
    return ran.rc, (ran.doc if ran.out.strip() else {}), ran.err


def phases(audit: Path) -> list[tuple[str, str, str]]:
    return [(r.phase, r.target, r.result) for r in read_records(audit)]


@contextlib.contextmanager
def reverter(host: HostileHost, link: str) -> Iterator[None]:
    """Another process that keeps ``link`` out of any bridge (a flapping tool, a config manager)."""
    loop = 'while :; do ip link set dev "$1" nomaster 2>/dev/null; sleep 0.02; done'
    proc = subprocess.Popen(["ip", "netns", "exec", host.ns, "sh", "-c", loop, "sh", link])
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def tmpfs(size: str, *opts: str) -> Iterator[Path]:
    """A tmpfs of its own under /tmp/vs-h-*, unmounted at the end."""
    where = Path(tempfile.mkdtemp(prefix="vs-h-audit-", dir="/tmp"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join((f"size={size}", *opts)), "vs-h-audit", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)
        where.rmdir()


def fill(fs: Path) -> None:
    """Write until the file system says ENOSPC."""
    with contextlib.suppress(OSError), (fs / "filler").open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()


def test_a_fix_on_hostile_names_is_applied_verified_and_logged_intact(host: HostileHost) -> None:
    host.detach(T1, T2)
    audit = host.dir / "actions.jsonl"
    rc, doc, err = fix(host, audit)
    assert rc == 0, err
    assert doc["result"] == "verified" and doc["restored"] is None
    assert host.master(T1) == BR and host.master(T2) == BR
    records = read_records(audit)
    assert [(r.phase, r.result) for r in records] == [("apply", "ok")] * 2 + [("verify", "verified")] * 2
    assert {r.target for r in records} == {T1, T2} and {r.domain for r in records} == {D1}
    assert all(len(line.split("\n")) == 1 for line in audit.read_text().splitlines())


def test_a_change_undone_by_another_process_is_left_to_it_and_the_rest_rolled_back(host: HostileHost) -> None:
    """Two taps re-plugged; another process unplugs one of them right after: verification
    fails, that one is left as the other process made it, the other one is undone, and a
    fresh look shows both as they were before the run. Exit 1: problems remain."""
    host.detach(T1, T2)
    audit = host.dir / "actions.jsonl"
    with reverter(host, T1):
        rc, doc, err = fix(host, audit)
    assert rc == 1, err
    assert doc["result"] == "rolled-back" and doc["restored"] is True
    assert host.master(T1) is None and host.master(T2) is None  # as before the run
    by_target = {r["target"]: r for r in doc["results"]}
    assert by_target[T1]["yielded"] and not by_target[T1]["rolled_back"]
    assert by_target[T2]["rolled_back"] and by_target[T2]["not_restored"] == []
    assert sorted(p for p in phases(audit) if p[0] != "apply") == sorted(
        [
            ("verify", T1, "not-verified"),
            ("verify", T2, "verified"),
            ("rollback", T1, "rollback-skipped"),
            ("rollback", T2, "rolled-back"),
        ]
    )
    after = {v["target"]: v["status"] for v in doc["after"]}
    assert after == {T1: "detached", T2: "detached"}


FAIL_HALFWAY = """
import json, subprocess, sys
from pathlib import Path
from vifscope.actions import AuditLog, apply_plan, plan_fixes
from vifscope.actions.report import fix_report
from vifscope.bind.join import bind
from vifscope.sources.snapshot import take_snapshot
uri, audit, victim = sys.argv[1:4]
snap = take_snapshot(uri)
plan = plan_fixes(snap, bind(snap))
subprocess.run(["ip", "link", "del", "dev", victim], check=True)  # the host changes between plan and apply
out = apply_plan(plan, actor="doctor-fix", audit=AuditLog(Path(audit)))
print(json.dumps(fix_report(plan, out.status.value, out, audit)))
"""


def test_a_step_failing_halfway_undoes_the_steps_before_it(host: HostileHost) -> None:
    """Three taps to re-plug (planned in the order T3, T2, T1); the bridge of T2 and T1 is
    deleted after planning: T3 is re-plugged, T2's step fails, T1's never runs, T3 is
    unplugged again, and a fresh look agrees."""
    host.detach(T1, T2, T3)
    audit = host.dir / "actions.jsonl"
    ran = host.python(FAIL_HALFWAY, host.uri, str(audit), BR)
    assert ran.rc == 0, ran.err
    doc = ran.doc
    assert [a["target"] for a in doc["plan"]["actions"]] == [T3, T2, T1]
    assert doc["result"] == "apply-failed" and doc["restored"] is True
    assert host.master(T3) is None and BR not in host.links()
    r3, r2, r1 = doc["results"]
    assert r3["applied"] and r3["rolled_back"] and r3["not_restored"] == []
    assert not r2["applied"] and "failed" in r2["error"] and not r1["applied"]
    assert phases(audit) == [("apply", T3, "ok"), ("apply", T2, "failed"), ("rollback", T3, "rolled-back")]
    assert {v["target"]: v["status"] for v in doc["after"]}[T3] == "detached"


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_an_audit_log_that_cannot_take_the_run_refuses_it_before_any_change(host: HostileHost, how: str) -> None:
    host.detach(T1)
    with tmpfs("256k") as fs:
        audit = fs / "actions.jsonl"
        audit.write_text("")
        if how == "full":
            fill(fs)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        rc, doc, err = fix(host, audit)
        assert audit.read_text() == ""  # not one line
    assert rc == 3, err
    assert doc == {} and ("bytes free" if how == "full" else "Read-only file system") in err
    assert "hint:" in err
    assert host.master(T1) is None  # nothing changed


FILLS_MID_RUN = """
import contextlib, json, sys
from pathlib import Path
from vifscope.actions import AuditLog, Runner, apply_plan, plan_fixes
from vifscope.actions.report import fix_report
from vifscope.bind.join import bind
from vifscope.sources.snapshot import take_snapshot

class FillsTheDisk(Runner):
    # After the first step really ran, the audit log's file system fills up (another writer).
    def run(self, step):
        super().run(step)
        with contextlib.suppress(OSError), (Path(sys.argv[2]).parent / "filler").open("ab") as out:
            while True:
                out.write(b"\\0" * 65536)
                out.flush()

uri, audit = sys.argv[1:3]
snap = take_snapshot(uri)
plan = plan_fixes(snap, bind(snap))
out = apply_plan(plan, actor="doctor-fix", audit=AuditLog(Path(audit)), runner=FillsTheDisk())
print(json.dumps(fix_report(plan, out.status.value, out, audit)))
"""


def test_an_audit_log_that_fills_up_mid_run_undoes_the_unlogged_change(host: HostileHost) -> None:
    host.detach(T1, T2)
    with tmpfs("1m") as fs:
        audit = fs / "actions.jsonl"
        ran = host.python(FILLS_MID_RUN, host.uri, str(audit))
        lines = audit.read_text() if audit.exists() else ""
    assert ran.rc == 0, ran.err
    doc = ran.doc
    assert doc["result"] == "audit-failed" and doc["restored"] is True
    assert host.master(T1) is None and host.master(T2) is None  # the unlogged change is gone
    assert [r["applied"] for r in doc["results"]] == [True, False]  # the second never ran
    assert lines == "" and any("No space left" in e for e in doc["audit_errors"])


HEAL = """
import json, sys
from pathlib import Path
from vifscope.actions import AuditLog
from vifscope.bind.join import bind
from vifscope.sources.snapshot import take_snapshot
from vifscope.watch.heal_actions import ActionsHealer
uri, audit = sys.argv[1:3]
snap = take_snapshot(uri)
broken = [b for b in bind(snap) if b.problems]
results = ActionsHealer(AuditLog(Path(audit)), settle=0.5).heal(snap, broken, dry_run=False)
print(json.dumps({r.binding.vif.target: [r.result, r.error] for r in results}))
"""


def test_heal_leaves_a_vif_another_process_keeps_unplugged_and_heals_the_others(host: HostileHost) -> None:
    """watch --heal's healer: the batch fails verification (T1 is unplugged again by another
    process), so each vif is retried alone: T2 heals, T1 is rolled back (left as it is)."""
    host.detach(T1, T2)
    audit = host.dir / "actions.jsonl"
    with reverter(host, T1):
        ran = host.python(HEAL, host.uri, str(audit))
    assert ran.rc == 0, ran.err
    results = ran.doc
    assert results[T1][0] == "rolled-back" and "master is none" in (results[T1][1] or "")
    assert results[T2] == ["ok", None]
    assert host.master(T1) is None and host.master(T2) == BR
    assert all(r.actor == "heal" and r.domain == D1 for r in read_records(audit))


def test_heal_with_a_full_audit_log_changes_nothing(host: HostileHost) -> None:
    host.detach(T1)
    with tmpfs("256k") as fs:
        fill(fs)
        ran = host.python(HEAL, host.uri, str(fs / "actions.jsonl"))
    assert ran.rc == 0, ran.err
    assert ran.doc[T1][0] == "refused" and "bytes free" in ran.doc[T1][1]
    assert host.master(T1) is None


@contextlib.contextmanager
def api(host: HostileHost, audit: Path) -> Iterator[str]:
    """``vifscope serve`` inside the namespace, with a token; yields its URL."""
    token = host.dir / "token"
    token.write_text(API_TOKEN)
    token.chmod(0o600)
    argv = host.vifscope_argv("serve", "--json", "--listen", "127.0.0.1:0", "--token-file", str(token))
    proc = subprocess.Popen(
        [*argv, "--audit-log", str(audit)], stdout=subprocess.PIPE, text=True, cwd=host.dir, env=host.env()
    )
    try:
        assert proc.stdout is not None
        yield str(json.loads(proc.stdout.readline())["url"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


API_TOKEN = "vs-h-" + "a11ce" * 5


def test_the_api_heal_reports_a_rollback_and_a_full_log(host: HostileHost) -> None:
    """Through the API (actor "api"): another process keeps T1 unplugged -> 409 with the
    report (rolled back, restored); a full audit log -> 503, nothing changed."""
    host.detach(T1)
    audit = host.dir / "actions.jsonl"
    with api(host, audit) as url, reverter(host, T1):
        ran = host.python(API_HEAL, url, API_TOKEN, D1, MAC[T1])
    status, doc = json.loads(ran.out)
    assert status == 409 and doc["result"] == "rolled-back" and doc["restored"] is True, doc
    assert host.master(T1) is None
    with tmpfs("256k") as fs:
        fill(fs)
        with api(host, fs / "actions.jsonl") as url:
            ran = host.python(API_HEAL, url, API_TOKEN, D1, MAC[T1])
    status, doc = json.loads(ran.out)
    assert status == 503 and "bytes free" in doc["error"] and doc["hint"], doc
    assert host.master(T1) is None
