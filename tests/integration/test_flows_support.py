"""flows.unavailable on this host, for real: as root on a TCX kernel the program loads (and
nothing stays loaded); in a process without CAP_BPF/CAP_SYS_ADMIN it does not, and doctor says
why with the errno."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vifscope.lab.flowhost import vifscope_programs
from vifscope.sources.flows.support import read_flow_support

pytestmark = pytest.mark.integration
SRC = Path(__file__).resolve().parents[2] / "src"


def test_loads_here_as_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root")
    before = {p["id"] for p in vifscope_programs()}  # a concurrent bench/flows.py may hold some
    got = read_flow_support()
    assert got.available, got.reason
    assert got.tcx is True and got.program in ("built", "prebuilt")
    assert {p["id"] for p in vifscope_programs()} <= before


def test_without_capabilities_doctor_says_why() -> None:
    """capsh drops every capability from the bounding set: BPF map creation gets EPERM."""
    if os.geteuid() != 0:
        pytest.fail("needs root")
    code = "import json; from dataclasses import asdict; from vifscope.sources.flows.support import read_flow_support; "
    code += "print(json.dumps(asdict(read_flow_support())))"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--", sys.executable, "-c", code]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    got = json.loads(out)
    assert got["available"] is False
    assert "EPERM" in got["reason"], got
    assert "root" in got["hint"]


def test_flows_without_capabilities_exits_3_with_one_line_and_a_hint() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root")
    argv = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--", sys.executable, "-m", "vifscope"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "500"}
    ran = subprocess.run([*argv, "-c", "test:///default", "flows", "--interval", "0.1"], capture_output=True,
                         text=True, env=env)  # fmt: skip
    assert ran.returncode == 3, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert lines[0].startswith("error: the BPF program did not load: EPERM"), lines
    assert lines[1].startswith("  hint: run as root"), lines
    assert "Traceback" not in ran.stderr and ran.stdout == ""
