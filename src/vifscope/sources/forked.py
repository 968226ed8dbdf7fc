"""Run one source read in a forked child, so its parsing uses another core.

Why: a one-shot ``status`` / ``doctor`` is bound by the GIL, not by waiting. At 5,000 vifs
parsing the link dump (~0.15 s) and, for doctor, the JSON of ``tc`` / ``ip neigh`` / ``nft``
ran on the same core as parsing 1,250 domain documents. A child made with fork() does the
kernel side in parallel and hands back the result pickled (~25 ms to unpickle 5,000 links).

Only when the process has no other thread: forking a threaded process can copy a lock some
other thread holds. Otherwise (a test runner, a daemon) the read runs on a thread here, as
it did. The function given must return data, not raise: a raise in the child comes back as
ChildFailed with the child's traceback (on the thread, the exception itself).
"""

from __future__ import annotations

import os
import pickle
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class ChildFailed(RuntimeError):
    """The read raised in the child (a bug: reads report their own failures as data)."""


class Forked(Generic[T]):
    """``Forked(fn)`` starts ``fn`` in a child at once; ``result()`` waits for it."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._pid: int | None = None
        self._fd: int | None = None
        self._thread: Future[T] | None = None
        if hasattr(os, "fork") and threading.active_count() == 1:
            self._start()
        else:
            self._thread = Future()
            threading.Thread(target=self._on_thread, name="vifscope-forked", daemon=True).start()

    def _on_thread(self) -> None:
        assert self._thread is not None
        try:
            self._thread.set_result(self._fn())
        except BaseException as exc:  # handed to result() through the future, not swallowed
            self._thread.set_exception(exc)

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, write, leave without running the parent's cleanups
            os.close(read_fd)
            self._child(write_fd)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd

    def _child(self, fd: int) -> None:
        code = 0
        try:
            payload = pickle.dumps((True, self._fn()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # any failure goes back to the parent, which raises it
            payload = pickle.dumps((False, traceback.format_exc()))
            code = 1
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
        finally:
            os._exit(code)

    @property
    def forked(self) -> bool:
        return self._pid is not None

    def result(self) -> T:
        if self._thread is not None:
            return self._thread.result()
        if self._pid is None or self._fd is None:
            raise ChildFailed("result() was already taken")
        with os.fdopen(self._fd, "rb") as pipe:
            data = pipe.read()
        os.waitpid(self._pid, 0)
        self._pid = self._fd = None
        if not data:
            raise ChildFailed("the forked reader died without an answer")
        ok, value = pickle.loads(data)
        if not ok:
            raise ChildFailed(f"the forked reader failed:\n{value}")
        result: T = value
        return result
