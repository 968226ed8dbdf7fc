"""The pending ``vifscope apply --confirm-within`` (nmstate's checkpoint with a timeout):
one at a time, a JSON file in a state directory holding the rollback target, the deadline
and how to reach the host. A detached watchdog rolls back at the deadline unless
``--commit`` removed the file first; an flock on the directory's lock file serialises the
watchdog, ``--commit`` and ``--rollback`` so exactly one of them acts.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vifscope.actions.declare.checkpoint import desired_from_json, desired_to_json
from vifscope.model.desired import Desired

DEFAULT_PENDING_DIR = Path("/var/lib/vifscope/apply-pending")
PENDING_ENV = "VIFSCOPE_APPLY_PENDING_DIR"


class PendingError(RuntimeError):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Pending:
    run: str
    uri: str
    deadline: float  # time.time() epoch seconds
    target: Desired
    audit_log: str
    xml_dir: str
    settle: float
    macs: tuple[str, ...] = ()  # taken from the MAC store by mac: auto: given back on rollback

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "uri": self.uri,
            "deadline": self.deadline,
            "audit_log": self.audit_log,
            "xml_dir": self.xml_dir,
            "settle": self.settle,
            "macs": list(self.macs),
            "target": desired_to_json(self.target),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Pending:
        return cls(
            doc["run"],
            doc["uri"],
            float(doc["deadline"]),
            desired_from_json(doc["target"]),
            doc["audit_log"],
            doc["xml_dir"],
            float(doc["settle"]),
            tuple(doc.get("macs", ())),
        )


@dataclass(frozen=True)
class PendingStore:
    root: Path

    @classmethod
    def from_env(cls, given: Path | None) -> PendingStore:
        return cls(given or Path(os.environ.get(PENDING_ENV) or DEFAULT_PENDING_DIR))

    @property
    def file(self) -> Path:
        return self.root / "pending.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise PendingError(f"cannot use {self.root}: {exc.strerror}", "run as root or set --pending-dir") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def read(self) -> Pending | None:
        """The pending apply (call under ``locked``), or None."""
        try:
            text = self.file.read_text()
        except FileNotFoundError:
            return None
        try:
            return Pending.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise PendingError(f"{self.file} is damaged: {exc}", "inspect it, then remove it by hand") from exc

    def write(self, pending: Pending) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(pending.to_json()))
        tmp.replace(self.file)  # atomic: a watchdog never reads half a file

    def remove(self) -> None:
        self.file.unlink(missing_ok=True)
