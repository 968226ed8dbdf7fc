"""Commands as data: what doctor suggests and what ``--fix`` runs, in one structured form.

A name on a host may hold any byte the kernel or libvirt accepts: ``;``, ``$(...)``, quotes,
backticks, spaces (domain names), a leading ``-``. So a command is never a string built by
formatting: it is an argv, run as is (no shell) and shown with ``shlex.join``, which quotes
every word a POSIX shell would otherwise split or expand. Pasting the shown text into a shell
runs exactly that argv.

A Fix is a few commands chained by ``&&`` or ``;`` plus a note for the parts that are not a
command (``virsh edit``'s XML change, a placeholder to fill in). The note is shown after
``#``, on the same line, so the whole text is still one safe shell line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Command:
    """One command as its argv; never run through a shell."""

    argv: tuple[str, ...]

    def text(self) -> str:
        return shlex.join(self.argv)


class Chain(StrEnum):
    """How a fix's commands follow each other in the shell line."""

    AND = "&&"  # stop at the first failure (the usual: later steps need the earlier ones)
    THEN = ";"  # run the next one whatever the last returned (net-destroy of a half-broken network)


def one_line(note: str) -> str:
    """A note shown after ``#``: a newline would end the comment and make the rest a command."""
    return " ".join(note.split())


@dataclass(frozen=True)
class Fix:
    """What resolves a finding: commands (maybe none) and a note for what is not a command."""

    commands: tuple[Command, ...] = ()
    note: str = ""
    chain: Chain = Chain.AND

    def command_text(self) -> str:
        return f" {self.chain.value} ".join(c.text() for c in self.commands)

    def text(self) -> str:
        """The paste-safe shell line: the commands, then the note as a comment."""
        note = one_line(self.note)
        if not self.commands:
            return f"# {note}"
        return self.command_text() + (f"  # {note}" if note else "")

    @property
    def argvs(self) -> tuple[tuple[str, ...], ...]:
        return tuple(c.argv for c in self.commands)
