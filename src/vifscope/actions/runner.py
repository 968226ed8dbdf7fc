"""Runs plan steps for real: commands, files, sysctls. The only I/O of the actions layer.

Why subprocess (``ip``, ``ovs-vsctl``, ``virsh``) rather than libvirt-python read-write: the
plan shows exact commands, the audit log records them, and running the very argv that was
shown means what the user approved is what ran (and can be replayed by hand). vifscope's
libvirt connection stays read-only; the two libvirt changes (net-start, domif-setlink) are
rare, and virsh costs ~40 ms each.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vifscope.actions.model import RestoreFile, RestoreSysctl, SetSysctl, Step, WriteFile
from vifscope.checks.commands import sysctl_set
from vifscope.model import Command


class StepFailed(RuntimeError):
    """A step did not do what it says; the message is one line naming the command and its error."""


@dataclass
class Runner:
    """Executes steps and remembers what was there before, so Restore* steps can put it back.

    One Runner per apply: the memory is what makes the file and sysctl undos exact.
    """

    timeout: float = 30.0
    proc_sys: Path = Path("/proc/sys")
    saved_files: dict[str, str | None] = field(default_factory=dict)
    saved_sysctls: dict[str, str] = field(default_factory=dict)

    def run(self, step: Step) -> None:
        HANDLERS[type(step)](self, step)

    def read_sysctl(self, key: str) -> str | None:
        try:
            return (self.proc_sys / key.replace(".", "/")).read_text().strip()
        except OSError:
            return None

    def command(self, argv: tuple[str, ...]) -> str:
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StepFailed(f"{argv[0]}: {exc}") from exc
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            why = lines[-1] if lines else f"exit {proc.returncode}"
            raise StepFailed(f"'{shlex.join(argv)}' failed: {why}")
        return proc.stdout


def _run(runner: Runner, step: Command) -> None:
    runner.command(step.argv)


def _write(path: Path, content: str) -> None:
    """Atomic replace: a crash never leaves a half-written sysctl file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        out.write(content)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _write_file(runner: Runner, step: WriteFile) -> None:
    path = Path(step.path)
    try:
        old = path.read_text() if path.exists() else None
        runner.saved_files.setdefault(step.path, old)
        _write(path, step.content)
    except OSError as exc:
        raise StepFailed(f"cannot write {step.path}: {exc.strerror or exc}") from exc


def _restore_file(runner: Runner, step: RestoreFile) -> None:
    if step.path not in runner.saved_files:
        return  # never written by this apply: nothing to put back
    old = runner.saved_files[step.path]
    try:
        if old is None:
            Path(step.path).unlink(missing_ok=True)
        else:
            _write(Path(step.path), old)
    except OSError as exc:
        raise StepFailed(f"cannot restore {step.path}: {exc.strerror or exc}") from exc


def _set_sysctl(runner: Runner, step: SetSysctl) -> None:
    old = runner.read_sysctl(step.key)
    if old is None:
        raise StepFailed(f"sysctl {step.key} does not exist on this kernel")
    runner.saved_sysctls.setdefault(step.key, old)
    runner.command(step.command.argv)


def _restore_sysctl(runner: Runner, step: RestoreSysctl) -> None:
    old = runner.saved_sysctls.get(step.key)
    if old is not None:
        runner.command(sysctl_set((step.key, " ".join(old.split()))).argv)


# Keyed by step type: how each kind of step is carried out.
HANDLERS: dict[type, Callable[[Runner, Any], None]] = {
    Command: _run,
    WriteFile: _write_file,
    RestoreFile: _restore_file,
    SetSysctl: _set_sysctl,
    RestoreSysctl: _restore_sysctl,
}
