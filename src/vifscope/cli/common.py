"""What the commands share: the vif filters they take, and how a one-shot document is printed
(consoles, JSON, a required source's error)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vifscope.report.documents import REQUIRED_SOURCES

if TYPE_CHECKING:
    from rich.console import Console


def make_console(*, stderr: bool = False) -> Console:
    # rich is imported only when something is printed for a human: --json never needs it
    # (its import is ~35 ms of a status that must answer in well under a second).
    from vifscope.report.tables import make_console as make

    return make(stderr=stderr)


def emit_json(doc: dict[str, Any]) -> None:
    """Indented for a terminal; compact when piped. (indent forces json's pure-Python
    encoder: 1.3 s for 5,000 vifs against ~0.1 s for the C one.)"""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(doc, indent=indent, ensure_ascii=False))
    sys.stdout.write("\n")


def fatal_source(console: Console, doc: dict[str, Any]) -> bool:
    """Print the one-line error for a required source that failed; True if one did."""
    for err in doc["source_errors"]:
        if err["source"] in REQUIRED_SOURCES:
            console.print(f"[bold red]error:[/] {err['error']}", highlight=False)
            if err.get("hint"):
                console.print(f"  hint: {err['hint']}", highlight=False)
            return True
    return False


def show(doc: dict[str, Any], code: int, as_json: bool, human: Callable[[Console], None]) -> int:
    """How a one-shot command's document reaches the user: the JSON as it is; or a required
    source's error alone, else the other sources' warnings on stderr and then ``human``'s view."""
    if as_json:
        emit_json(doc)
        return code
    from vifscope.report.tables import print_errors

    err = make_console(stderr=True)
    if not fatal_source(err, doc):
        print_errors(err, doc["source_errors"])
        human(make_console())
    return code


def vif_filters(p: argparse.ArgumentParser, *, problems: bool = True) -> None:
    """``-d/--domain`` (repeatable) and ``--problems``, alike on every command that lists vifs."""
    p.add_argument("-d", "--domain", action="append", metavar="NAME", help="only this domain (repeatable)")
    if problems:
        p.add_argument("--problems", action="store_true", help="only vifs that are not bound/inactive")
