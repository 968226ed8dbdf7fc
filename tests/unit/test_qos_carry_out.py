"""qos set's apply → verify → roll back, with real commands (``true`` / ``false``) and a real
audit log; the verification answers are the inputs under test (what a fresh read would say)."""

from __future__ import annotations

import json
from pathlib import Path

from vifscope.actions.audit import AuditLog
from vifscope.actions.qosapply import Attempt, Judged, carry_out, new_log
from vifscope.model import Command
from vifscope.model.qos import DirectionQos, QosVerdict

V = QosVerdict
OK, FAIL = Command(("true",)), Command(("false",))


def answer(verdict: QosVerdict) -> Judged:
    side = DirectionQos(None, None, verdict)
    return Judged(side, side, verdict)


def attempt(cmd: Command, verdict: QosVerdict, accept: QosVerdict = V.ENFORCED) -> Attempt:
    return Attempt((cmd,), lambda: answer(verdict), frozenset({accept}))


def phases(path: Path) -> list[tuple[str, str]]:
    return [(r["phase"], r["result"]) for r in map(json.loads, path.read_text().splitlines())]


def run(tmp_path: Path, apply: Attempt, back: Attempt) -> tuple[str, list[tuple[str, str]]]:
    log = tmp_path / "audit.jsonl"
    out = carry_out(apply, lambda: back, new_log(AuditLog(log), "qos-tc", "web", "52:54:00:00:00:01"))
    return out.status, phases(log)


def test_verified_apply_is_enforced_and_never_rolls_back(tmp_path: Path) -> None:
    assert run(tmp_path, attempt(OK, V.ENFORCED), attempt(FAIL, V.NONE)) == (
        "enforced",
        [("apply", "ok"), ("verify", "verified")],
    )


def test_a_clear_that_leaves_nothing_is_cleared(tmp_path: Path) -> None:
    status, _ = run(tmp_path, attempt(OK, V.NONE, accept=V.NONE), attempt(FAIL, V.NONE))
    assert status == "cleared"


def test_drift_after_apply_rolls_back_and_verifies_the_rollback(tmp_path: Path) -> None:
    assert run(tmp_path, attempt(OK, V.DRIFT), attempt(OK, V.ENFORCED)) == (
        "rolled-back",
        [("apply", "ok"), ("verify", "not-verified"), ("rollback", "rolled-back")],
    )


def test_a_failed_command_skips_verification_and_rolls_back(tmp_path: Path) -> None:
    assert run(tmp_path, attempt(FAIL, V.ENFORCED), attempt(OK, V.NONE, accept=V.NONE)) == (
        "rolled-back",
        [("apply", "failed"), ("rollback", "rolled-back")],
    )


def test_a_rollback_that_does_not_verify_says_so(tmp_path: Path) -> None:
    assert run(tmp_path, attempt(OK, V.MISSING), attempt(OK, V.DRIFT)) == (
        "rollback-failed",
        [("apply", "ok"), ("verify", "not-verified"), ("rollback", "rollback-failed")],
    )
