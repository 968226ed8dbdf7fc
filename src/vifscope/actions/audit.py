"""The audit log: one JSON line per applied action, per verification, per rollback.

Shared by ``doctor --fix`` (actor "doctor-fix") and ``watch --heal`` (actor "heal"). Each line
is one ``write()`` on an O_APPEND descriptor, so concurrent writers never interleave lines.

Line fields: ts (ISO-8601 UTC), run (one id per apply), actor, phase (apply / verify /
rollback), action (ActionKind), target, domain, mac, reason (problem code or check id),
commands (exact, as run), result (ok / failed / verified / not-verified / rolled-back / rollback-skipped /
rollback-failed), error.

A change that cannot be logged is not kept: ``check_writable`` refuses a run before its first
change when the log cannot be opened for append or its file system has less than ``need``
bytes free, and a line that fails mid-run (disk filled meanwhile) makes apply undo everything
(vifscope.actions.apply). A short write counts as a failed one (the torn line is skipped by
every reader).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from vifscope.actions.model import Action

DEFAULT_AUDIT_LOG = Path("/var/log/vifscope/actions.jsonl")
# Free bytes a run needs: a line is ~0.5-2 kB, a run writes three per action (apply, verify,
# rollback); this covers hundreds of actions, and a nearly full disk is refused outright.
MIN_FREE = 256 * 1024
LINE_BUDGET = 4096


class AuditError(RuntimeError):
    """The audit log cannot be written; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class AuditRecord:
    """One line of the audit log."""

    ts: str
    run: str
    actor: str
    phase: str
    action: str
    target: str
    commands: tuple[str, ...]
    result: str
    domain: str | None = None
    mac: str | None = None
    reason: str | None = None
    error: str | None = None


def record(
    run: str, actor: str, phase: str, action: Action, result: str, commands: Sequence[str], error: str | None = None
) -> AuditRecord:
    return AuditRecord(
        ts=datetime.now(UTC).isoformat(timespec="milliseconds"),
        run=run,
        actor=actor,
        phase=phase,
        action=action.kind.value,
        target=action.target,
        commands=tuple(commands),
        result=result,
        domain=action.domain,
        mac=action.mac,
        reason=action.reason,
        error=error,
    )


@dataclass(frozen=True)
class AuditLog:
    """An append-only JSON-lines file (the directory is created on first use)."""

    path: Path = DEFAULT_AUDIT_LOG

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            raise AuditError(
                f"cannot write the audit log {self.path}: {exc.strerror or exc}",
                "run as root, or pass another audit log path",
            ) from exc

    def check_writable(self, actions: int = 0) -> None:
        """Fail before changing anything if changes could not be logged: the file opens for
        append (not a read-only mount, not a directory) and its file system has room for the
        lines of ``actions`` actions (at least MIN_FREE bytes)."""
        fd = self._open()
        try:
            st = os.fstatvfs(fd)
        finally:
            os.close(fd)
        free, need = st.f_bavail * st.f_frsize, max(MIN_FREE, 3 * LINE_BUDGET * actions)
        if free < need:
            raise AuditError(
                f"the audit log {self.path} has {free} bytes free, a run needs {need}: nothing was changed",
                f"free disk space on the file system of {self.path.parent}",
            )

    def write(self, rec: AuditRecord) -> None:
        line = json.dumps(asdict(rec), ensure_ascii=False, separators=(",", ":")) + "\n"
        fd = self._open()
        data = line.encode()
        try:
            if os.write(fd, data) != len(data):
                raise OSError(28, "short write (file system full?)")
        except OSError as exc:
            raise AuditError(f"cannot append to {self.path}: {exc.strerror or exc}", "check free disk space") from exc
        finally:
            os.close(fd)


def read_records(path: Path) -> tuple[AuditRecord, ...]:
    """Every line of an audit log (missing file: none). Unparseable lines are skipped."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return ()
    known = {f.name for f in fields(AuditRecord)}
    out: list[AuditRecord] = []
    for line in lines:
        try:
            raw = json.loads(line)
            kept = {k: v for k, v in raw.items() if k in known}  # newer versions may add fields
            kept["commands"] = tuple(kept.get("commands") or ())
            out.append(AuditRecord(**kept))
        except (ValueError, TypeError, AttributeError):
            continue  # a torn or foreign line: the rest is still readable
    return tuple(out)
