"""libvirt's default event loop on a daemon thread: what domain/network callbacks need.

virEventRegisterDefaultImpl must run before any connection that registers callbacks is
opened, and the loop is process-wide in libvirt itself, so one thread serves every such
connection of the process (the watcher's and the exporter's declared cache alike).
"""

from __future__ import annotations

import threading
from typing import ClassVar


class EventLoop:
    """``EventLoop.ensure()`` starts the loop thread once per process (idempotent)."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _thread: ClassVar[threading.Thread | None] = None

    @classmethod
    def ensure(cls) -> None:
        import libvirt

        with cls._lock:
            if cls._thread is not None:
                return
            libvirt.virEventRegisterDefaultImpl()
            cls._thread = threading.Thread(target=cls._run, name="vifscope-libvirt-events", daemon=True)
            cls._thread.start()

    @staticmethod
    def _run() -> None:
        import libvirt

        while True:
            libvirt.virEventRunDefaultImpl()
