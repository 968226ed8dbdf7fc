"""attach when the audit log stops taking lines: nothing is changed that the log cannot record.

The log is ``/dev/full`` (it opens and its file system has room, every write fails with ENOSPC:
a disk that fills mid-run), so the first line, the MAC allocation, fails: the MAC goes back to
its pool and libvirt is never asked (with the unreachable URI below, asking would give
``apply-failed``, not ``audit-failed``). The undo after a failed line later in the run is the
same rollback as a failed verification (tests/e2e/test_attach_e2e.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vifscope.actions.audit import AuditLog
from vifscope.actions.vifapply import MacBook, run_attach
from vifscope.actions.vifplan import NicKind, NicRequest, Scope
from vifscope.model import DomainState
from vifscope.model.devices import DomainView
from vifscope.sources.libvirt.conn import LibvirtUnavailable

MAC = "52:54:00:10:00:2a"


def test_a_log_that_cannot_take_the_allocation_line_changes_nothing() -> None:
    released: list[str] = []
    book = MacBook(take=lambda: (MAC, "lab", True), release=released.append)
    dom = DomainView("vs-x; $(true)", "0" * 32, DomainState.RUNNING, True, True, "x86_64", (), ())
    out = run_attach(
        "test:///nonexistent/vs-no-such-node.xml", dom, NicRequest(NicKind.BRIDGE, "vs-br0"),
        Scope(live=True, config=False), book, AuditLog(Path("/dev/full")), settle=0.0,
    )  # fmt: skip
    assert out.status == "audit-failed" and not out.ok
    assert released == [MAC] and out.released
    assert out.audit_errors and "/dev/full" in out.audit_errors[0]


def test_a_writable_log_lets_the_same_attach_reach_libvirt(tmp_path: Path) -> None:
    """The control: the same request with a log that works gets past the allocation to libvirt,
    which cannot be reached: the MAC goes back and the error reaches the caller (exit 3), so
    the test above did stop at the log."""
    released: list[str] = []
    book = MacBook(take=lambda: (MAC, "lab", True), release=released.append)
    dom = DomainView("vs-x", "0" * 32, DomainState.RUNNING, True, True, "x86_64", (), ())
    with pytest.raises(LibvirtUnavailable):
        run_attach(
            "test:///nonexistent/vs-no-such-node.xml", dom, NicRequest(NicKind.BRIDGE, "vs-br0"),
            Scope(live=True, config=False), book, AuditLog(tmp_path / "audit.jsonl"), settle=0.0,
        )  # fmt: skip
    assert released == [MAC]
    actions = [json.loads(line)["action"] for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert actions == ["mac-allocate", "vif-attach", "mac-release"]
