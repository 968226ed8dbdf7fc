"""libvirt test driver + a real kernel side in a private netns: verdicts at small scale.

The declared side is libvirt's test driver (test:///node.xml); the kernel side is real:
bridges and taps held open by a holder process (real carrier), faults made for real.
The same generator drives the 5,000-vif benchmark, so this keeps that path honest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from vifscope.lab.host import ensure_libvirtd
from vifscope.lab.synth import SynthHost, plan

pytestmark = pytest.mark.integration


def run_in(netns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "vifscope", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(params=["node-file", "daemon"])
def synth(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Both ways the benchmark serves the declared side: an in-process node file, and
    libvirtd's shared test driver reached over its socket (RPC, like a real host)."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    daemon = request.param == "daemon"
    if daemon:
        ensure_libvirtd()
    p = plan(domains=15, nics=4, bridges=3, fault_every=7, shutoff_every=6, prefix="vs-i")
    with SynthHost(p, f"vs-it{os.getpid()}", daemon=daemon) as host:
        yield host


def test_every_verdict_matches_the_planted_fault(synth: SynthHost) -> None:
    proc = run_in(synth.netns, "-c", synth.uri, "status", "--json")
    assert proc.returncode == 1, proc.stderr  # planted faults => problems found
    doc = json.loads(proc.stdout)
    got = {(v["domain"], v["index"]): v["status"] for v in doc["vifs"]}
    want = {(v.domain, v.index): v.expect for v in synth.plan.vifs}
    assert got == want
    kinds = Counter(v.expect for v in synth.plan.vifs)
    assert {"bound", "detached", "misbound", "down", "missing", "inactive"} <= set(kinds)


def test_network_vifs_resolve_through_the_network_xml(synth: SynthHost) -> None:
    doc = json.loads(run_in(synth.netns, "-c", synth.uri, "status", "--json").stdout)
    net_vifs = [v for v in doc["vifs"] if v["type"] == "network" and v["status"] == "bound"]
    assert net_vifs
    assert {v["bridge"] for v in net_vifs} == {synth.plan.bridges[0]}


def test_kernel_side_is_read_in_the_current_namespace(synth: SynthHost) -> None:
    """Run outside the namespace: none of the taps exist there, so running vifs are missing."""
    doc = json.loads(
        subprocess.run(
            [sys.executable, "-m", "vifscope", "-c", synth.uri, "status", "--json"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    )
    running = [v for v in doc["vifs"] if v["domain_state"] == "running"]
    assert running and all(v["status"] == "missing" for v in running)
