"""``vifscope apply --confirm-within`` on the real host: the detached watchdog rolls an
unconfirmed apply back by itself (``vifscope export`` equal to before, audit lines of phase
rollback under the apply's run), ``--commit`` keeps it, ``--rollback`` undoes it at once,
and a second apply is refused while one is pending. A Linux bridge and an isolated network
named with the lab prefix, removed afterwards even on failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import SPEC, Result, vifscope
from vifscope.lab.host import ensure_libvirtd

pytestmark = pytest.mark.e2e

BR = SPEC.name("cfbr")
NET = SPEC.name("cfnet")
NETBR = SPEC.name("cfnetbr")
S = f"{SPEC.net}.62"
FILE = f"""bridges:
  - {{name: {BR}, kind: linux, stp: false}}
networks:
  - {{name: {NET}, mode: isolated, bridge: {NETBR}, ipv4: {{address: {S}.1/24}}, autostart: false}}
"""


def _cleanup() -> None:
    for argv in (["virsh", "net-destroy", NET], ["virsh", "net-undefine", NET], ["ip", "link", "del", "dev", BR]):
        subprocess.run(argv, capture_output=True, check=False)


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("apply e2e needs root")
    ensure_libvirtd(print)
    _cleanup()
    (tmp_path / "host.yaml").write_text(FILE)
    try:
        yield tmp_path
    finally:
        _cleanup()


def run(tmp: Path, *args: str) -> Result:
    return vifscope("apply", *args, "--pending-dir", str(tmp / "pending"), "--json")


def apply(tmp: Path, *extra: str) -> Result:
    audit = ("--audit-log", str(tmp / "audit.jsonl"), "--xml-dir", str(tmp))
    return run(tmp, str(tmp / "host.yaml"), *audit, *extra)


def export(tmp: Path) -> str:
    res = vifscope("export", "--names-from", str(tmp / "host.yaml"), "--json")
    assert res.rc == 0, res.err
    return res.out


def wait_gone(path: Path, limit: float = 60.0) -> None:
    """The watchdog removes the pending file when it has rolled back (or a test fails at ``limit``)."""
    end = time.monotonic() + limit
    while path.exists() and time.monotonic() < end:
        time.sleep(0.5)
    assert not path.exists(), "the watchdog did not roll back"


def test_unconfirmed_apply_rolls_back_by_itself(tmp: Path) -> None:
    before = export(tmp)
    done = apply(tmp, "--confirm-within", "3")
    assert (done.rc, done.doc["status"], done.doc["confirm_within"]) == (0, "verified", 3.0), done.out + done.err
    assert export(tmp) != before
    again = apply(tmp)
    assert again.rc == 1 and "pending confirmation" in again.doc["error"], again.out

    wait_gone(tmp / "pending" / "pending.json")
    assert export(tmp) == before
    records = [json.loads(line) for line in (tmp / "audit.jsonl").read_text().splitlines()]
    rolled = {(r["target"], r["result"]) for r in records if r["phase"] == "rollback"}
    assert rolled == {(BR, "rolled-back"), (NET, "rolled-back")}
    assert {r["run"] for r in records} == {done.doc["run"]}


def test_commit_keeps_the_change_and_rollback_undoes_it_now(tmp: Path) -> None:
    before = export(tmp)
    assert apply(tmp, "--confirm-within", "3").rc == 0
    committed = run(tmp, "--commit")
    assert (committed.rc, committed.doc["status"]) == (0, "committed"), committed.out + committed.err
    time.sleep(5)  # past the deadline: the watchdog woke, found nothing pending and left
    after = export(tmp)
    assert after != before and BR in after
    assert run(tmp, "--commit").rc == 1  # nothing pending any more

    _cleanup()
    assert apply(tmp, "--confirm-within", "120").rc == 0
    undone = run(tmp, "--rollback")
    assert (undone.rc, undone.doc["status"]) == (0, "rolled-back"), undone.out + undone.err
    assert export(tmp) == before
    assert not (tmp / "pending" / "pending.json").exists()
