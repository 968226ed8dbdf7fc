"""End-to-end fixtures: a private lab (prefix ``vs-t-``, subnets 10.78.x) of real TCG guests.

The lab is built once per session and removed at the end, even when tests fail. Each
test that breaks something restores it in a ``finally`` (or a fixture), so tests can
run in any order. Needs root, libvirtd, qemu-system-x86 and Open vSwitch (make setup).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from vifscope.lab.host import ensure_libvirtd, ensure_ovs
from vifscope.lab.lab import break_guest, guest_targets, lab_down, lab_up, wait_ready
from vifscope.lab.topology import LabSpec

# Overridable so two checkouts can run their e2e suites side by side without clashing.
SPEC = LabSpec(
    prefix=os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-"),
    net=os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78"),
)


def _log(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def doc(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.out)
        return parsed


def vifscope(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the installed CLI as a user would (a separate process, real exit code)."""
    proc = subprocess.run(
        [sys.executable, "-m", "vifscope", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def sh(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc.stdout


def vif_of(doc: dict[str, Any], domain: str, index: int = 0) -> dict[str, Any]:
    found = [v for v in doc["vifs"] if v["domain"] == domain and v["index"] == index]
    assert found, f"no vif {domain}#{index} in {[v['domain'] for v in doc['vifs']]}"
    return found[0]


def wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.fixture(scope="session")
def lab() -> Iterator[LabSpec]:
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests need root (they start libvirtd and boot guests): run make test as root")
    ensure_libvirtd(_log)
    ensure_ovs(_log)
    try:
        lab_up(SPEC, _log, wait=0)
        names = [g.name for g in SPEC.guests() if g.running]
        not_ready = wait_ready(names, 180, _log)  # TCG boots slow down when the host is loaded
        assert not not_ready, f"guests did not boot: {not_ready}"
        yield SPEC
    finally:
        lab_down(SPEC, _log)


@pytest.fixture(autouse=True)
def _lab_baseline(request: pytest.FixtureRequest) -> None:
    """Every lab test starts from the lab's known faults: a libvirtd restart (some tests do
    one) re-plugs detached bridge taps of running domains, healing 'broken' behind our back."""
    if "lab" in request.fixturenames:
        spec: LabSpec = request.getfixturevalue("lab")
        break_guest(spec.guest("broken"))


@pytest.fixture
def target(lab: LabSpec) -> Callable[[str, int], str]:
    """Target dev (tap / macvtap name) of a lab guest's n-th vif, from its live XML."""

    def get(short: str, index: int = 0) -> str:
        tgt = guest_targets(lab.name(short))[index]
        assert tgt, f"{short} has no target"
        return tgt

    return get


def ping(netns: str, addr: str, count: int = 1) -> bool:
    """Traffic stays inside the lab: from its own 'outside' namespace to a lab guest."""
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, "ping", "-c", str(count), "-W", "1", addr],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0
