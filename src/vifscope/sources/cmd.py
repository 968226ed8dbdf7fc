"""Run one read-only host command and return its (JSON) output; the deep-fact sources share this.

A failure is a CommandError with one line saying what failed: the caller turns it into a
SourceError, so a missing ``tc`` or ``nft`` makes the snapshot partial, never a crash.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any


class CommandError(RuntimeError):
    """The command is not installed, failed, timed out, or printed something unparseable."""


def run_text(cmd: Sequence[str], *, timeout: float = 10.0) -> str:
    """stdout of ``cmd``; raises CommandError (not installed / non-zero exit / timeout)."""
    exe = shutil.which(cmd[0])
    if exe is None:
        raise CommandError(f"'{cmd[0]}' is not installed")
    shown = " ".join(cmd)
    try:
        proc = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"'{shown}' timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise CommandError(f"'{shown}' failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def run_json(cmd: Sequence[str], *, timeout: float = 10.0) -> Any:
    """Parsed JSON stdout of ``cmd`` (empty output reads as an empty list)."""
    out = run_text(cmd, timeout=timeout)
    try:
        return json.loads(out) if out.strip() else []
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than json reads
        raise CommandError(f"'{' '.join(cmd)}' printed invalid JSON: {exc}") from exc
