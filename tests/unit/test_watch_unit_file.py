"""The shipped systemd unit runs a command line vifscope itself accepts."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from vifscope.cli.main import build_parser

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "systemd" / "vifscope-watch.service"


def test_unit_execstart_parses_with_the_cli() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0] == "@VIFSCOPE@"  # scripts/setup.sh substitutes the installed path
    args = build_parser(argv[1:]).parse_args(argv[1:])
    assert (args.command, args.heal, args.dry_run) == ("watch", True, False)
    assert unit["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"  # SIGHUP: reload the config
    assert unit["Service"]["KillSignal"] == "SIGTERM"  # SIGTERM: clean exit 0
    assert unit["Install"]["WantedBy"] == "multi-user.target"
