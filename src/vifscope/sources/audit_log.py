"""Counts of applied actions, read from the actions audit log (``/var/log/vifscope/actions.jsonl``).

Why the audit log and not a shared in-memory counter: ``watch --heal`` and the exporter are
separate processes (either may restart), and the audit log is already the durable record of
every heal (vifscope.actions.audit writes one JSON line per action and phase: ``actor`` heal or
doctor-fix, ``phase`` apply / verify / rollback, ``result`` ok / failed / verified /
not-verified / rolled-back / rollback-failed). The
exporter follows it like ``tail -F``: each scrape reads only the bytes appended since the last
one, so a long log costs one full read at start-up and nothing after. Counts only grow: a
rotated or truncated log is read again from its start and added on top.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

DEFAULT_AUDIT_LOG = Path("/var/log/vifscope/actions.jsonl")

# Label values must stay few and valid: anything that is not a short word becomes "other".
_TOKEN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
CHUNK = 1 << 20


class AuditLogError(RuntimeError):
    """The audit log exists but cannot be read."""


@dataclass(frozen=True)
class ActionCount:
    """How many audit-log lines had this ``actor``, ``phase`` and ``result`` (heal / apply / ok)."""

    actor: str
    phase: str
    result: str
    count: int


def _token(value: object) -> str:
    text = str(value).strip().lower() if value is not None else ""
    return text if _TOKEN.match(text) else "other"


Key = tuple[str, str, str]  # (actor, phase, result)
INVALID: Key = ("invalid", "other", "other")


def parse_lines(data: bytes) -> Counter[Key]:
    """(actor, phase, result) counts of complete JSON lines. A line that is not a JSON object
    (torn, foreign) must not break the exporter: it is counted as actor "invalid"."""
    counts: Counter[Key] = Counter()
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            counts[INVALID] += 1
            continue
        if not isinstance(entry, dict):
            counts[INVALID] += 1
            continue
        counts[_token(entry.get("actor")), _token(entry.get("phase")), _token(entry.get("result"))] += 1
    return counts


class AuditLogTail:
    """Follows one append-only JSON-lines file; ``read()`` returns cumulative counts."""

    def __init__(self, path: Path = DEFAULT_AUDIT_LOG) -> None:
        self.path = path
        self._inode: int | None = None
        self._offset = 0
        self._counts: Counter[Key] = Counter()

    def read(self) -> tuple[ActionCount, ...]:
        """Counts so far. A missing log means no action yet (not an error). Raises AuditLogError."""
        try:
            with self.path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                if st.st_ino != self._inode or st.st_size < self._offset:
                    self._inode, self._offset = st.st_ino, 0  # new or truncated file: start over
                fh.seek(self._offset)
                self._consume(fh.read(max(0, st.st_size - self._offset)))
        except FileNotFoundError:
            pass  # no log yet: nothing has been applied, the counts stay as they are
        except OSError as exc:
            raise AuditLogError(f"cannot read audit log {self.path}: {exc.strerror or exc}") from exc
        return tuple(ActionCount(a, p, r, n) for (a, p, r), n in sorted(self._counts.items()))

    def _consume(self, data: bytes) -> None:
        # Only whole lines: a writer may be half-way through the last one.
        end = data.rfind(b"\n") + 1
        self._counts.update(parse_lines(data[:end]))
        self._offset += end
