"""doctor's fixes are pasted into root shells: whatever the names on the host, each printed fix
must be one shell line that runs exactly its argv: no extra word, no expansion, no second
command. Checked for every check of the registry that gives a fix, over hostile names (see
hostile.py), with the real /bin/sh: ``sh -n`` (it parses), ``shlex.split`` (the words), and
``printf`` in place of each command (what sh actually passes, ``$(...)`` and all)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.hostile import HostileCase, hostile_cases
from vifscope.bind.join import bind
from vifscope.checks import ALL_CHECKS, evaluate
from vifscope.model import Chain, Command, Fix, HostSnapshot
from vifscope.report.findings import doctor_report

NO_FIX = frozenset({"vif.unverified"})  # a note that a vif was not checked: nothing to do
RECORD = "\x1e"  # printf prints it after each command's words


def _docs() -> Iterator[tuple[HostileCase, dict[str, Any]]]:
    for case in hostile_cases():
        doc = doctor_report(case.snap, evaluate(case.snap, bind(case.snap), case.config), bind(case.snap))
        for f in doc["findings"]:
            yield case, f


@pytest.fixture(scope="module")
def fixed() -> list[tuple[HostileCase, dict[str, Any]]]:
    """Every finding with a fix, in every renamed case."""
    return [(case, f) for case, f in _docs() if f["fix"] is not None]


def _expected_words(f: dict[str, Any]) -> list[str]:
    """The words of the line: each argv, the chain operator between them; the note is a comment."""
    out: list[str] = []
    for i, argv in enumerate(f["fix_argv"]):
        out += ([f["fix_chain"]] if i else []) + argv
    return out


def _sh_words(commands: list[list[str]], cwd: Path) -> list[list[str]]:
    """What /bin/sh passes to each command as printed: ``printf`` stands in for the program."""
    script = "\n".join(f"printf '%s\\0' {Command(tuple(a)).text()}; printf '{RECORD}'" for a in commands)
    out = subprocess.run(["/bin/sh", "-c", script], cwd=cwd, capture_output=True, text=True, check=True).stdout
    return [[w for w in chunk.split("\0") if w] for chunk in out.split(RECORD)[:-1]]


def test_the_cases_hold_hostile_names() -> None:
    cases = hostile_cases()
    assert len(cases) >= 60
    shown = {new for case in cases for new in case.names.values()}
    assert {"web 1 $(touch x)", "vt;id", "br$(id)", "-x", "--n", "a$(id)`b`;'\"c-d"} <= shown
    assert max(len(n.encode()) for n in shown if "$(id)`b`" in n) == 15


def test_every_fix_is_one_shell_line_that_runs_exactly_its_argv(
    fixed: list[tuple[HostileCase, dict[str, Any]]], tmp_path: Path
) -> None:
    seen: set[str] = set()
    for case, f in fixed:
        line = f["fix"]
        if line in seen:
            continue
        seen.add(line)
        where = (case.name, f["check"], line)
        assert "\n" not in line and "\r" not in line, where
        subprocess.run(["/bin/sh", "-n", "-c", line], check=True)
        assert shlex.split(line, comments=True) == _expected_words(f), where
        if f["fix_argv"]:
            assert _sh_words(f["fix_argv"], tmp_path) == f["fix_argv"], where
            assert f["fix_chain"] in ("&&", ";"), where
    assert not list(tmp_path.iterdir())  # no "$(touch x)" ever ran
    assert len(seen) > 100


def test_names_are_whole_argv_words(fixed: list[tuple[HostileCase, dict[str, Any]]]) -> None:
    """A hostile name is an argv element of its own (or a file or macvlan named after it), never
    spliced into a longer word where a tool would parse it as something else."""
    for case, f in fixed:
        hostile = [n for n in case.names.values() if len(n) > 2 and not n.replace("-", "").isalnum()]
        for argv in f["fix_argv"]:
            for word in argv:
                inside = [n for n in hostile if n in word and word not in (n, f"{n}.xml", f"{n[:10]}-host")]
                assert not inside, (case.name, f["check"], word, inside)


def test_every_check_with_a_fix_was_driven_over_hostile_names(
    fixed: list[tuple[HostileCase, dict[str, Any]]],
) -> None:
    """Enumerated from the registry: a new check that gives a fix fails here until a case makes
    it fire (tests/golden_checks) or it is listed in NO_FIX."""
    with_fix = {f["check"] for _, f in fixed}
    assert with_fix == {c.id for c in ALL_CHECKS} - NO_FIX


@pytest.mark.parametrize(
    ("fix", "line"),
    [
        (Fix((Command(("ip", "link", "set", "dev", "vt;id", "up")),)), "ip link set dev 'vt;id' up"),
        (Fix(note="edit it\nrm -rf /"), "# edit it rm -rf /"),
        (
            Fix((Command(("a",)), Command(("b", "$x"))), "why\nnot", Chain.THEN),
            "a ; b '$x'  # why not",
        ),
    ],
)
def test_fix_text(fix: Fix, line: str) -> None:
    """A note is one comment line: a newline in it would make the rest a command."""
    assert fix.text() == line


def test_renamed_snapshot_keeps_no_old_name() -> None:
    case = hostile_cases()[0]
    text = repr(case.snap)
    assert all(f"'{old}'" not in text for old in case.names), case.name
    assert isinstance(case.snap, HostSnapshot)
