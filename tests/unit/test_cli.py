"""The CLI registry: lazily imported subcommands must register under the name they are keyed by."""

from __future__ import annotations

import argparse
import json

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
    assert _choices(cli.build_parser(["status"])) == {"status"}


@pytest.mark.parametrize(
    "argv",
    [
        ["-c", "test:///x", "status", "--json"],
        ["status", "-c", "test:///x", "--json"],
        ["--json", "status", "--connect", "test:///x"],
        ["--connect=test:///x", "--json", "status"],
        ["-c", "qemu:///other", "status", "--connect=test:///x", "--json"],  # after the command wins
    ],
)
def test_connect_and_json_before_or_after_the_command(argv: list[str]) -> None:
    args = cli.build_parser(argv).parse_args(argv)
    assert (args.command, args.connect, args.json) == ("status", "test:///x", True)


@pytest.mark.parametrize("command", sorted(cli.SUBCOMMAND_MODULES))
def test_every_command_takes_connect_after_its_name(command: str) -> None:
    """lab's and fleet's own subcommands come first (``lab up -c URI``); every other command takes -c directly."""
    nested = {"lab": ["up"], "fleet": ["status", "--inventory", "fleet.yaml"]}
    argv = [command, *nested.get(command, []), "-c", "test:///y"]
    args, _ = cli.build_parser(argv).parse_known_args(argv)
    assert args.connect == "test:///y"


def test_without_options_the_defaults_stand() -> None:
    args = cli.build_parser(["status"]).parse_args(["status"])
    assert (args.connect, args.json) == (None, False)


def _status_doc(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert cli.main(argv) in (0, 1)
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    doc.pop("taken_at")
    return doc


def test_status_json_is_the_same_document_with_connect_before_or_after(capsys: pytest.CaptureFixture[str]) -> None:
    """libvirt's own test driver (no daemon): the real connection code path, a real URI."""
    before = _status_doc(["-c", "test:///default", "status", "--json"], capsys)
    after = _status_doc(["status", "-c", "test:///default", "--json"], capsys)
    assert before == after
    assert before["uri"] == "test:///default" and before["vifs"]
