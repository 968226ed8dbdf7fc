"""The fleet's systemd units (contrib/systemd/): their command lines are ones vifscope itself
accepts, and ``systemd-analyze verify`` finds nothing to say about them (it needs no running
systemd to check a unit file; it warns about unknown keys and bad values on stderr)."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vifscope.cli.main import build_parser

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
FLEET_UNITS = ("vifscope-agent.service", "vifscope-fleet-sync.service")


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((UNITS / name).read_text())
    return unit


def _argv(name: str) -> list[str]:
    argv = shlex.split(_unit(name)["Service"]["ExecStart"].replace("%H", "kvm-a1"))  # %H: systemd's host name
    assert argv[0] == "@VIFSCOPE@"  # scripts/setup.sh substitutes the installed path
    return argv[1:]


def test_the_agent_unit_serves_tls_with_a_read_token_and_a_host_id() -> None:
    argv = _argv("vifscope-agent.service")
    args = build_parser(argv).parse_args(argv)
    assert (args.command, args.host_id, args.listen) == ("serve", "kvm-a1", "0.0.0.0:8777")
    assert (args.read_token_file, args.tls_cert, args.tls_key) == (
        Path("/etc/vifscope/read-token"),
        Path("/etc/vifscope/tls/cert.pem"),
        Path("/etc/vifscope/tls/key.pem"),
    )
    assert args.token_file is None  # read-only: no mutation token unless the admin adds one


def test_the_sync_unit_runs_the_daemon_on_the_inventory() -> None:
    argv = _argv("vifscope-fleet-sync.service")
    args = build_parser(argv).parse_args(argv)
    assert (args.command, args.fleet_command, args.daemon) == ("fleet", "sync", True)
    assert args.inventory == Path("/etc/vifscope/fleet.yaml") and args.db is None  # VIFSCOPE_DB from the env file
    service = _unit("vifscope-fleet-sync.service")["Service"]
    assert service["EnvironmentFile"] == "-/etc/vifscope/fleet-sync.env" and service["Restart"] == "on-failure"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_has_nothing_to_say(tmp_path: Path) -> None:
    vifscope = Path(sys.executable).with_name("vifscope")
    if not vifscope.exists():
        pytest.skip("no installed vifscope script next to the interpreter")
    for name in (*FLEET_UNITS, "vifscope-watch.service"):
        (tmp_path / name).write_text((UNITS / name).read_text().replace("@VIFSCOPE@", str(vifscope)))
    run = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / n) for n in FLEET_UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
