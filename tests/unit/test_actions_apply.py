"""apply_plan as a transaction, the step runner, promises and the audit log.

Steps run for real: files in a temporary directory and real commands (``true``, ``false``,
``ip`` on a link that does not exist). The "fresh snapshot" verification looks at is a golden
case read by the real parsers; what is asserted is the effect on real files and the audit log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.golden.test_golden import CASES_DIR, load_case
from vifscope.actions import (
    ActionKind,
    ApplyStatus,
    AuditError,
    AuditLog,
    Observed,
    Plan,
    Runner,
    StepFailed,
    apply_plan,
    read_records,
)
from vifscope.actions.model import (
    Action,
    LinkMaster,
    LinkUp,
    NetworkActive,
    OvsPortOn,
    Promise,
    RestoreFile,
    Step,
    SysctlIs,
    VifLinkState,
    WriteFile,
)
from vifscope.model import Command, HostSnapshot


def snap(name: str) -> HostSnapshot:
    return load_case(CASES_DIR / name).snap


def seen(name: str, **sysctls: str) -> Observed:
    return Observed(snap(name), tuple(sysctls.items()))


def file_action(path: Path, content: str, promise: Promise, *extra: Step) -> Action:
    return Action(
        ActionKind.ATTACH,
        str(path),
        f"write {path.name}",
        (WriteFile(str(path), content), *extra),
        (RestoreFile(str(path)),),
        (promise,),
        "detached",
        "vs-web",
        "52:54:00:10:00:01",
    )


BOUND = LinkMaster("vs-web-0", "vs-br0")


def test_verified_plan_keeps_its_changes_and_logs_apply_and_verify(tmp_path: Path) -> None:
    target, audit = tmp_path / "a.conf", tmp_path / "log" / "actions.jsonl"
    outcome = apply_plan(
        Plan("qemu:///system", (file_action(target, "x=1\n", BOUND),)),
        actor="heal",
        audit=AuditLog(audit),
        observe=lambda _p, _r: seen("linux-bridge-bound"),
    )
    assert outcome.status == ApplyStatus.VERIFIED
    assert target.read_text() == "x=1\n"
    assert [(r.phase, r.result, r.actor) for r in read_records(audit)] == [
        ("apply", "ok", "heal"),
        ("verify", "verified", "heal"),
    ]
    line = json.loads(audit.read_text().splitlines()[0])
    assert set(line) >= {"ts", "run", "actor", "phase", "action", "target", "commands", "result", "domain", "mac"}
    assert line["commands"] == [f"write {target}: x=1"]


def test_failed_promise_rolls_back_what_still_holds_and_leaves_what_someone_else_changed(tmp_path: Path) -> None:
    """A broken promise means the state is no longer what we set (another tool changed it):
    undoing that action would clobber the other tool, so only the actions whose effect is
    still in place are undone, last first."""
    first, second, audit = tmp_path / "first", tmp_path / "second", tmp_path / "actions.jsonl"
    second.write_text("before\n")
    plan = Plan(
        "qemu:///system",
        (file_action(first, "1\n", LinkUp("vs-br0")), file_action(second, "2\n", BOUND)),
    )
    outcome = apply_plan(plan, actor="doctor-fix", audit=AuditLog(audit), observe=lambda _p, _r: seen("tap-detached"))
    assert outcome.status == ApplyStatus.ROLLED_BACK
    assert not first.exists()  # its promise held: undone (did not exist before: removed)
    assert second.read_text() == "2\n"  # its promise was broken by someone else: left alone
    r1, r2 = outcome.results
    assert (r1.verified, r1.rolled_back) == (True, True)
    assert (r2.verified, r2.rolled_back) == (False, False)
    assert r2.broken == ("vs-web-0 is a port of vs-br0: vs-web-0 master is none",)
    assert [(r.phase, r.target, r.result) for r in read_records(audit)] == [
        ("apply", str(first), "ok"),
        ("apply", str(second), "ok"),
        ("verify", str(first), "verified"),
        ("verify", str(second), "not-verified"),
        ("rollback", str(second), "rollback-skipped"),
        ("rollback", str(first), "rolled-back"),
    ]


def test_failed_step_stops_the_plan_and_undoes_what_ran(tmp_path: Path) -> None:
    ok, partial, never, audit = tmp_path / "ok", tmp_path / "partial", tmp_path / "never", tmp_path / "a.jsonl"
    plan = Plan(
        "qemu:///system",
        (
            file_action(ok, "1\n", BOUND),
            file_action(partial, "2\n", BOUND, Command(("ip", "link", "set", "vs-no-such-link", "up"))),
            file_action(never, "3\n", BOUND),
        ),
    )
    outcome = apply_plan(plan, actor="doctor-fix", audit=AuditLog(audit), observe=lambda _p, _r: seen("tap-detached"))
    assert outcome.status == ApplyStatus.APPLY_FAILED
    assert not ok.exists() and not partial.exists() and not never.exists()
    r_ok, r_partial, r_never = outcome.results
    assert r_ok.rolled_back and r_partial.rolled_back and not r_never.applied
    assert r_partial.error is not None and "'ip link set vs-no-such-link up' failed" in r_partial.error
    assert r_ok.verified is None  # verification never ran
    assert [(r.phase, r.result) for r in read_records(audit)] == [
        ("apply", "ok"),
        ("apply", "failed"),
        ("rollback", "rolled-back"),
        ("rollback", "rolled-back"),
    ]


def test_an_interrupt_during_verification_rolls_back_then_propagates(tmp_path: Path) -> None:
    target = tmp_path / "t"
    looks: list[str] = []

    def interrupted(_plan: Plan, _runner: Runner) -> Observed:
        looks.append("look")
        if len(looks) == 1:  # the look before apply
            return seen("tap-detached")
        assert target.exists()  # applied by now
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply_plan(
            Plan("qemu:///system", (file_action(target, "1\n", BOUND),)),
            actor="doctor-fix",
            audit=None,
            observe=interrupted,
        )
    assert not target.exists() and len(looks) == 2


def test_empty_plan_is_nothing_to_do_and_writes_no_log(tmp_path: Path) -> None:
    audit = tmp_path / "a.jsonl"
    outcome = apply_plan(Plan("qemu:///system"), actor="heal", audit=AuditLog(audit))
    assert outcome.status == ApplyStatus.NOTHING
    assert not audit.exists()


def test_runner_reports_the_failing_command_in_one_line() -> None:
    with pytest.raises(StepFailed) as err:
        Runner().run(Command(("ip", "link", "set", "vs-no-such-link", "up")))
    assert str(err.value).startswith("'ip link set vs-no-such-link up' failed: ")
    assert "\n" not in str(err.value)
    with pytest.raises(StepFailed, match="vs-no-such-binary"):
        Runner().run(Command(("vs-no-such-binary",)))
    Runner().run(Command(("true",)))


def test_runner_reads_sysctls_from_proc(tmp_path: Path) -> None:
    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "net" / "ipv4" / "ip_local_port_range").write_text("32768\t60999\n")
    runner = Runner(proc_sys=tmp_path)
    assert runner.read_sysctl("net.ipv4.ip_local_port_range") == "32768\t60999"
    assert runner.read_sysctl("net.ipv4.nope") is None
    assert Runner().read_sysctl("kernel.ostype") == "Linux"


@pytest.mark.parametrize(
    ("promise", "good", "bad", "why"),
    [
        (BOUND, "linux-bridge-bound", "tap-misbound", "vs-web-0 master is vs-br1"),
        (LinkUp("vs-web-0"), "linux-bridge-bound", "tap-admin-down", "vs-web-0 is admin down"),
        (LinkUp("vs-web-0"), "linux-bridge-bound", "target-missing", "vs-web-0 does not exist"),
        (OvsPortOn("vs-o-0", "vs-ovs0", "52:54:00:aa:00:01"), "ovs-bound", "ovs-removed", "on no OVS bridge"),
        (OvsPortOn("vs-o-0", "vs-ovs0", "52:54:00:aa:00:01"), "ovs-bound", "ovs-wrong-bridge", "on OVS vs-ovs1"),
        (OvsPortOn("vs-o-0", "vs-ovs0", "52:54:00:aa:00:01"), "ovs-bound", "ovs-attached-mac-mismatch", "aa:00:99"),
        (OvsPortOn("vs-o-0", "vs-ovs0"), "ovs-bound", "ovs-unavailable", "OVSDB could not be read"),
        (NetworkActive("vs-net3"), "network-inactive", "network-inactive", "vs-net3 is inactive"),
        (NetworkActive("vs-net"), "network-bridge-resolution", "linux-bridge-bound", "vs-net not seen"),
        (VifLinkState("vs-web", "52:54:00:10:00:01", "up"), "tap-detached", "libvirt-link-state-down", "is down"),
    ],
)
def test_promises_on_real_parser_snapshots(promise: Promise, good: str, bad: str, why: str) -> None:
    if good != bad:
        assert promise.broken(seen(good)) is None
    broken = promise.broken(seen(bad))
    assert broken is not None and why in broken


def test_sysctl_promise_normalises_whitespace() -> None:
    obs = seen("linux-bridge-bound", **{"net.ipv4.ip_local_port_range": "1024\t60999"})
    assert SysctlIs("net.ipv4.ip_local_port_range", "1024 60999").broken(obs) is None
    assert SysctlIs("net.ipv4.ip_local_port_range", "32768 60999").broken(obs) is not None
    assert SysctlIs("net.core.somaxconn", "4096").broken(obs) == "net.core.somaxconn could not be read"


def test_audit_log_unwritable_is_reported_before_anything_changes(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AuditError) as err:
        AuditLog(blocker / "actions.jsonl").check_writable()
    assert "cannot write the audit log" in str(err.value) and err.value.hint


def test_audit_reader_skips_torn_lines_and_ignores_new_fields(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    line = {"ts": "t", "run": "r", "actor": "heal", "phase": "apply", "action": "attach", "target": "x"}
    log.write_text(
        json.dumps({**line, "commands": ["c"], "result": "ok", "future_field": 1})
        + "\n"
        + '{"ts": "torn'
        + "\n"
        + json.dumps([1, 2])
        + "\n"
    )
    (rec,) = read_records(log)
    assert (rec.actor, rec.result, rec.commands) == ("heal", "ok", ("c",))
    assert read_records(tmp_path / "missing.jsonl") == ()
