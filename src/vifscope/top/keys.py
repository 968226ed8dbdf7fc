"""Single key presses for ``vifscope top`` (s: next sort column, r: reverse, q: quit).

The terminal is put in cbreak mode (keys arrive without Enter, Ctrl-C still works) and
restored on exit, even on an exception. Without a terminal on stdin (a pipe, a script) there
are no keys: ``read()`` just waits out its timeout.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import time
import tty
from types import TracebackType
from typing import Any


class Keys:
    """``with Keys() as keys: keys.read(timeout)`` -> a one-character string, or None on timeout."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno() if sys.stdin and not sys.stdin.closed else -1
        self.interactive = self.fd >= 0 and os.isatty(self.fd)
        self._saved: list[Any] | None = None

    def __enter__(self) -> Keys:
        if self.interactive:
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def read(self, timeout: float) -> str | None:
        if not self.interactive:
            time.sleep(timeout)
            return None
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return None
        data = os.read(self.fd, 1)
        return data.decode(errors="replace").lower() if data else "q"  # EOF on the terminal: quit
