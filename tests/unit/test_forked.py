"""Forked: a read in a forked child when the process is single-threaded, on a thread otherwise."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from vifscope.sources.forked import Forked

IN_FRESH_PROCESS = r"""
import os, sys
from vifscope.sources.forked import ChildFailed, Forked
parent = os.getpid()
job = Forked(lambda: (os.getpid(), [b"x" * 100_000] * 20))  # bigger than a pipe buffer
pid, payload = job.result()
print(pid != parent, len(payload), sum(map(len, payload)))
bad = Forked(lambda: 1 / 0)
try:
    bad.result()
except ChildFailed as exc:
    print("ZeroDivisionError" in str(exc))
killed = Forked(lambda: os.kill(os.getpid(), 9))
try:
    killed.result()
except ChildFailed as exc:
    print("without an answer" in str(exc))
"""


def test_a_single_threaded_process_forks_and_gets_the_result_back() -> None:
    out = subprocess.run([sys.executable, "-c", IN_FRESH_PROCESS], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "20", "2000000", "True", "True"]


def test_with_other_threads_it_runs_on_a_thread_of_this_process() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        job = Forked(lambda: threading.current_thread().name)
        assert not job.forked and job.result() == "vifscope-forked"
        with pytest.raises(ZeroDivisionError):
            Forked(lambda: 1 / 0).result()
    finally:
        stop.set()


def test_result_is_taken_once() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from vifscope.sources.forked import Forked\nj = Forked(lambda: 1)\n"
         "print(j.forked, j.result())\ntry:\n    j.result()\nexcept Exception as e:\n    print(type(e).__name__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.split() == ["True", "1", "ChildFailed"]


SNAPSHOT_CHILD_DIES = r"""
import os
from vifscope.sources import snapshot
parent, real = os.getpid(), snapshot.read_kernel_side
def reader(deep, links=True):
    if os.getpid() != parent:
        os.kill(os.getpid(), 9)  # the child is OOM-killed mid-read
    return real(deep, links)
snapshot.read_kernel_side = reader
snap = snapshot.take_snapshot("test:///default")
print(len(snap.links) > 0, [e.source for e in snap.errors if e.source == "netlink"])
"""


def test_snapshot_reads_the_kernel_side_itself_when_the_child_dies() -> None:
    out = subprocess.run([sys.executable, "-c", SNAPSHOT_CHILD_DIES], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "[]"]


DEEP_CHILDREN_DIE = r"""
import os
from vifscope.sources import snapshot
parent, real_side, real_links = os.getpid(), snapshot.read_kernel_side, snapshot.read_port_links
def die_in_child(fn):
    def reader(*args, **kwargs):
        if os.getpid() != parent:
            os.kill(os.getpid(), 9)
        return fn(*args, **kwargs)
    return reader
snapshot.read_kernel_side = die_in_child(real_side)
snapshot.read_port_links = die_in_child(real_links)
snap = snapshot.take_snapshot("test:///default", deep=True)
print(len(snap.links) > 0, snap.facts is not None and snap.facts.sysctls is not None)
"""


def test_doctor_snapshot_reads_links_and_facts_itself_when_both_children_die() -> None:
    out = subprocess.run([sys.executable, "-c", DEEP_CHILDREN_DIE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
