"""The audit log: one JSON line per applied action, per verification, per rollback.

Shared by ``doctor --fix`` (actor "doctor-fix") and ``watch --heal`` (actor "heal"). Each line
is one ``write()`` on an O_APPEND descriptor, so concurrent writers never interleave lines.

Line fields: ts (ISO-8601 UTC), run (one id per apply), actor, phase (apply / verify /
rollback), action (ActionKind), target, domain, mac, reason (problem code or check id),
commands (exact, as run), result (ok / failed / verified / not-verified / rolled-back / rollback-skipped /
rollback-failed), error.
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

    def check_writable(self) -> None:
        """Fail before changing anything if changes could not be logged."""
        os.close(self._open())

    def write(self, rec: AuditRecord) -> None:
        line = json.dumps(asdict(rec), ensure_ascii=False, separators=(",", ":")) + "\n"
        fd = self._open()
        try:
            os.write(fd, line.encode())
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
