"""Failed fixes end with the host as it was, and say so: the audit log refuses a run before its
first change or records every step, and a rollback is checked on a fresh look.

Steps change real files in a temporary directory and run real commands; the audit log is a
real file, a directory (cannot be opened: refused before anything changes) or ``/dev/full``
(opens, has room by statvfs, and every write fails with ENOSPC: a disk that fills mid-run).
The looks before apply and after the rollback are golden cases read by the real parsers.
The kernel versions (a real tmpfs filled up, a read-only mount, another process undoing the
change) are in tests/integration/test_failed_fixes.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.unit.test_actions_apply import BOUND, file_action, seen
from vifscope.actions import ApplyStatus, AuditError, AuditLog, Observed, Plan, Runner, apply_plan, read_records
from vifscope.actions.audit import MIN_FREE
from vifscope.actions.model import LinkUp, NetworkActive, OvsPortOn, Promise, SysctlIs, VifLinkState
from vifscope.actions.restore import SUBJECTS, differences, subject
from vifscope.model import Command

URI = "qemu:///system"


def looks(*cases: str) -> tuple[list[str], Callable[[Plan, Runner], Observed]]:
    """An observer that reads these golden cases in turn (the last one again when they run out)."""
    calls: list[str] = []

    def observe(_plan: Plan, _runner: Runner) -> Observed:
        name = cases[min(len(calls), len(cases) - 1)]
        calls.append(name)
        return seen(name)

    return calls, observe


def test_an_audit_log_that_cannot_be_opened_refuses_the_run_before_any_change(tmp_path: Path) -> None:
    target, log = tmp_path / "conf", tmp_path / "actions.jsonl"
    log.mkdir()  # a directory where the log should be: open(O_WRONLY) fails
    calls, observe = looks("tap-detached")
    outcome = apply_plan(
        Plan(URI, (file_action(target, "1\n", BOUND),)), actor="heal", audit=AuditLog(log), observe=observe
    )
    assert outcome.status is ApplyStatus.AUDIT_UNAVAILABLE
    assert not target.exists() and calls == []  # nothing applied, not even looked at
    assert outcome.host_unchanged and "cannot write the audit log" in outcome.audit_errors[0]


def test_a_full_disk_mid_run_undoes_everything_applied(tmp_path: Path) -> None:
    """/dev/full opens and its file system has room, but the first line fails with ENOSPC: the
    change that could not be logged is undone, and the next action never runs."""
    first, second = tmp_path / "first", tmp_path / "second"
    second.write_text("before\n")
    plan = Plan(URI, (file_action(first, "1\n", BOUND), file_action(second, "2\n", BOUND)))
    calls, observe = looks("tap-detached")
    outcome = apply_plan(plan, actor="doctor-fix", audit=AuditLog(Path("/dev/full")), observe=observe)
    assert outcome.status is ApplyStatus.AUDIT_FAILED
    assert not first.exists() and second.read_text() == "before\n"
    r1, r2 = outcome.results
    assert r1.applied and r1.rolled_back and not r2.applied
    assert outcome.restored is True and outcome.host_unchanged
    assert any("No space left on device" in e for e in outcome.audit_errors)
    assert calls == ["tap-detached", "tap-detached"]  # before apply, after the rollback


def test_the_preflight_wants_room_for_every_action(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    log.check_writable(3)  # the test's file system has far more than MIN_FREE
    with pytest.raises(AuditError) as err:
        log.check_writable(10**12)  # more lines than any disk here holds
    assert "bytes free, a run needs" in str(err.value) and "free disk space" in err.value.hint
    assert MIN_FREE >= 64 * 1024


def test_a_failed_undo_step_means_not_restored(tmp_path: Path) -> None:
    """The undo of the first action fails (its command exits 1): the rollback is incomplete,
    and the outcome says the host may be left changed."""
    first, audit = tmp_path / "first", tmp_path / "a.jsonl"
    undo_fails = dataclasses.replace(file_action(first, "1\n", BOUND), undo=(Command(("false",)),))
    breaks = file_action(tmp_path / "x", "2\n", BOUND, Command(("ip", "link", "set", "vs-h-no-such", "up")))
    _calls, observe = looks("tap-detached")
    outcome = apply_plan(Plan(URI, (undo_fails, breaks)), actor="doctor-fix", audit=AuditLog(audit), observe=observe)
    assert outcome.status is ApplyStatus.APPLY_FAILED
    assert outcome.restored is False and not outcome.host_unchanged
    assert first.exists()  # the undo did not run: the file is still there
    assert [(r.phase, r.result) for r in read_records(audit)][-1] == ("rollback", "rollback-failed")


def test_a_rollback_the_fresh_look_contradicts_is_not_restored(tmp_path: Path) -> None:
    """Before apply the tap was detached; after the undo the fresh look shows it on vs-br0:
    whatever the undo steps said, the host is not as it was."""
    breaks = file_action(tmp_path / "x", "2\n", BOUND, Command(("false",)))
    calls, observe = looks("tap-detached", "linux-bridge-bound")
    outcome = apply_plan(Plan(URI, (breaks,)), actor="heal", audit=None, observe=observe)
    assert outcome.status is ApplyStatus.APPLY_FAILED and outcome.restored is False
    (r,) = outcome.results
    assert r.rolled_back and r.not_restored == (
        "vs-web-0 is a port of vs-br0: before apply master none, OVS bridge none, "
        "after rollback master vs-br0, OVS bridge none",
    )
    assert calls == ["tap-detached", "linux-bridge-bound"]


def test_a_verified_plan_takes_no_look_after(tmp_path: Path) -> None:
    calls, observe = looks("linux-bridge-bound")
    outcome = apply_plan(
        Plan(URI, (file_action(tmp_path / "a", "1", BOUND),)), actor="heal", audit=None, observe=observe
    )
    assert outcome.status is ApplyStatus.VERIFIED and outcome.restored is None
    assert not outcome.host_unchanged  # the fix is kept
    assert len(calls) == 2  # before, verification


PROMISES = (
    (BOUND, "tap-detached", "tap-misbound"),
    (LinkUp("vs-web-0"), "linux-bridge-bound", "tap-admin-down"),
    (OvsPortOn("vs-o-0", "vs-ovs0"), "ovs-bound", "ovs-wrong-bridge"),
    (NetworkActive("vs-net3"), "network-inactive", "linux-bridge-bound"),
    (VifLinkState("vs-web", "52:54:00:10:00:01", "up"), "tap-detached", "libvirt-link-state-down"),
)


@pytest.fixture(params=PROMISES, ids=lambda p: type(p[0]).__name__)
def promise_case(request: pytest.FixtureRequest) -> Iterator[tuple[Promise, str, str]]:
    yield request.param


def test_every_promise_type_has_a_subject_that_tells_two_hosts_apart(promise_case: tuple[Promise, str, str]) -> None:
    promise, one, other = promise_case
    assert subject(promise, seen(one)) == subject(promise, seen(one))
    assert subject(promise, seen(one)) != subject(promise, seen(other))


def test_subjects_cover_every_promise_type_and_sysctls() -> None:
    assert {type(p) for p, _, _ in PROMISES} | {SysctlIs} == set(SUBJECTS)
    key = "net.core.somaxconn"
    action = file_action(Path("/x"), "", SysctlIs(key, "4096"))
    was, now = seen("linux-bridge-bound", **{key: "128"}), seen("linux-bridge-bound", **{key: "4096"})
    assert differences(action, was, was) == ()
    assert differences(action, was, now) == (f"{key} = 4096: before apply 128, after rollback 4096",)


def test_doctor_fix_exit_codes_say_how_the_host_ended(tmp_path: Path) -> None:
    """0 fixed; 1 rolled back and checked; 3 the audit log (nothing kept); 4 maybe left changed."""
    from vifscope.cli.fix import EXIT_NOT_RESTORED, _exit_code

    plan = Plan(URI, (file_action(tmp_path / "a", "1", BOUND),))
    _c, observe = looks("linux-bridge-bound")
    assert _exit_code(plan, apply_plan(plan, actor="doctor-fix", audit=None, observe=observe)) == 0
    failing = Plan(URI, (file_action(tmp_path / "b", "1", BOUND, Command(("false",))),))
    _c, observe = looks("tap-detached")
    assert _exit_code(failing, apply_plan(failing, actor="doctor-fix", audit=None, observe=observe)) == 1
    _c, observe = looks("tap-detached", "linux-bridge-bound")
    contradicted = apply_plan(failing, actor="doctor-fix", audit=None, observe=observe)
    assert _exit_code(failing, contradicted) == EXIT_NOT_RESTORED == 4
    _c, observe = looks("tap-detached")
    full = apply_plan(plan, actor="doctor-fix", audit=AuditLog(Path("/dev/full")), observe=observe)
    assert full.status is ApplyStatus.AUDIT_FAILED and _exit_code(plan, full) == 3
