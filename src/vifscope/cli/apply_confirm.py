"""``vifscope apply --confirm-within S`` / ``--commit`` / ``--rollback``: an apply that rolls
itself back unless confirmed (nmstate's checkpoint timeout), for changes that may cut the
operator off. The verified apply's checkpoint goes to the pending store
(``actions/declare/pending.py``) and a detached watchdog (``apply --watchdog RUN``, its own
session, outliving this process) rolls back at the deadline unless ``--commit`` removed it.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from vifscope.actions.audit import AuditLog
from vifscope.actions.declare.docs import outcome_doc, outcome_lines
from vifscope.actions.declare.pending import Pending, PendingError, PendingStore
from vifscope.actions.declare.run import Outcome, run_rollback
from vifscope.actions.declare.vifs import read_host
from vifscope.cli.common import emit_json, make_console
from vifscope.cli.vifstore import detach_release, open_store_view
from vifscope.report.documents import EXIT_OK, EXIT_PROBLEMS


def add_confirm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--confirm-within",
        type=float,
        metavar="S",
        help="after a verified apply, roll back by itself unless 'vifscope apply --commit' comes within S seconds",
    )
    p.add_argument("--commit", action="store_true", help="keep the pending --confirm-within apply")
    p.add_argument("--rollback", action="store_true", help="roll the pending --confirm-within apply back now")
    p.add_argument(
        "--pending-dir",
        type=Path,
        metavar="DIR",
        help="where a pending apply is kept (default $VIFSCOPE_APPLY_PENDING_DIR or /var/lib/vifscope/apply-pending)",
    )
    p.add_argument("--watchdog", metavar="RUN", help=argparse.SUPPRESS)


def store_of(args: argparse.Namespace) -> PendingStore:
    return PendingStore.from_env(args.pending_dir)


def refuse_if_pending(store: PendingStore) -> None:
    """One pending apply at a time: a second one would checkpoint the first one's changes."""
    pending = store.read()
    if pending is not None:
        left = max(0, round(pending.deadline - time.time()))
        raise PendingError(
            f"apply run {pending.run} is pending confirmation ({left} s left)",
            "vifscope apply --commit (keep it) or --rollback (undo it) first",
        )


def start_pending(
    args: argparse.Namespace, outcome: Outcome, uri: str, audit_path: Path, macs: tuple[str, ...] = ()
) -> float:
    """Keep the verified apply's checkpoint and start its watchdog; the deadline (epoch s)."""
    assert outcome.checkpoint is not None  # a verified Outcome carries it
    store = store_of(args)
    deadline: float = time.time() + float(args.confirm_within)
    pending = Pending(outcome.run, uri, deadline, outcome.checkpoint, str(audit_path), args.xml_dir, args.settle, macs)
    with store.locked():
        store.write(pending)
    argv = [sys.executable, "-m", "vifscope", "apply", "--watchdog", outcome.run, "--pending-dir", str(store.root)]
    # its own session: the watchdog outlives this CLI, its terminal and an SSH connection that drops
    subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    return deadline


def _roll_back(store: PendingStore, pending: Pending) -> Outcome:
    """Roll ``pending`` back (the caller holds the store's lock) and forget it."""
    read = partial(read_host, domains=pending.target.domain_names)
    audit = AuditLog(Path(pending.audit_log))
    outcome = run_rollback(
        pending.target, pending.uri, run=pending.run, read=read, audit=audit, settle=pending.settle,
        xml_dir=pending.xml_dir,
    )  # fmt: skip
    store.remove()
    if outcome.status == "rolled-back" and pending.macs:  # the NICs that had them are unplugged
        give_back = detach_release(open_store_view(None, socket.gethostname()))
        for mac in pending.macs:
            give_back(mac)
    return outcome


def cmd_watchdog(args: argparse.Namespace) -> int:
    """Sleep until the pending apply's deadline; roll back unless it was committed (or
    rolled back, or replaced by another run) meanwhile."""
    store = store_of(args)
    with store.locked():
        pending = store.read()
    if pending is None or pending.run != args.watchdog:
        return EXIT_OK
    time.sleep(max(0.0, pending.deadline - time.time()))
    with store.locked():
        pending = store.read()
        if pending is None or pending.run != args.watchdog:
            return EXIT_OK
        return EXIT_OK if _roll_back(store, pending).status == "rolled-back" else EXIT_PROBLEMS


def _say(args: argparse.Namespace, doc: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        emit_json(doc)
        return
    out = make_console()
    for line in lines:
        out.print(line, highlight=False, markup=False)


def cmd_commit(args: argparse.Namespace) -> int:
    store = store_of(args)
    with store.locked():
        pending = store.read()
        store.remove()
    if pending is None:
        _say(args, {"status": "nothing-pending"}, ["nothing pending (already committed, rolled back or timed out)"])
        return EXIT_PROBLEMS
    _say(args, {"status": "committed", "run": pending.run}, [f"committed: apply run {pending.run} is kept"])
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    store = store_of(args)
    with store.locked():
        pending = store.read()
        outcome = _roll_back(store, pending) if pending is not None else None
    if pending is None or outcome is None:
        _say(args, {"status": "nothing-pending"}, ["nothing pending (already committed, rolled back or timed out)"])
        return EXIT_PROBLEMS
    _say(args, outcome_doc(outcome, pending.audit_log), outcome_lines(outcome))
    return EXIT_OK if outcome.status == "rolled-back" else EXIT_PROBLEMS
