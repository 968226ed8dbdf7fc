"""The CLI registry: lazily imported subcommands must register under the name they are keyed by."""

from __future__ import annotations

import argparse

import pytest

from vifscope.cli import main as cli


def _choices(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["status", "--json"], "status"),
        (["-c", "test:///default", "doctor", "--list"], "doctor"),
        (["--connect", "qemu:///system", "watch"], "watch"),
        (["--json"], None),
        ([], None),
    ],
)
def test_command_word_skips_global_options(argv: list[str], want: str | None) -> None:
    assert cli._command_in(argv) == want


@pytest.mark.parametrize("command", sorted(cli.SUBCOMMAND_MODULES))
def test_each_lazy_module_registers_its_own_command(command: str) -> None:
    assert command in _choices(cli.build_parser([command]))


def test_help_and_typos_see_every_command() -> None:
    everything = {"status", "networks", *cli.SUBCOMMAND_MODULES}
    assert _choices(cli.build_parser(["--help"])) == everything
    assert _choices(cli.build_parser(["frobnicate"])) == everything


def test_status_does_not_register_the_others() -> None:
    assert _choices(cli.build_parser(["status"])) == {"status", "networks"}
