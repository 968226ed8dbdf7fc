"""libvirt's declared side kept between reads, for the long-running front ends (exporter, top).

Why: a one-shot command must read every domain's XML, but a scrape every 15 s of a host
whose domains did not change would re-fetch and re-parse 1,250 documents each time (~0.2 s
CPU at 5,000 vifs). ``DeclaredCache`` keeps one read-only connection and each domain's
parsed vifs, and re-reads a domain's XML only when it can have changed:

* it is new, or its name, state or id changed (one getAllDomainStats(STATE) call per read
  says so for every domain);
* libvirt sent a lifecycle or device added/removed event for it (the event loop thread
  only marks it; the read happens on the caller's thread);
* its copy is older than ``max_age`` (what changes with no event and no state change, e.g.
  ``virsh domif-setlink``, is seen within that bound; expiries are spread per domain so
  the re-reads do not all land on one scrape).

Networks are few and always re-read. A lost connection is dropped with its cache and
reopened on the next read.
"""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vifscope.model import DomainState, SourceError
from vifscope.sources.libvirt.conn import (
    DomainRead,
    LibvirtState,
    LibvirtUnavailable,
    connect_read_only,
    domains_with_state,
    fetch_xmls,
    hint_for,
    parse_read,
    read_networks,
    state_of,
)
from vifscope.sources.libvirt.eventloop import EventLoop

DEFAULT_MAX_AGE = 30.0


@dataclass(frozen=True)
class _Entry:
    state: DomainState
    dom_id: int
    read: DomainRead
    expires: float


class DeclaredCache:
    """``read()`` returns the same LibvirtState as ``read_libvirt``; not thread-safe (one
    reader: the deadline snapshotter's libvirt worker)."""

    def __init__(
        self,
        uri: str,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        events: bool = True,
        deep: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uri, self.max_age, self.events, self.deep, self._clock = uri, max_age, events, deep, clock
        self._conn: Any = None
        self._hostname = ""
        self._entries: dict[str, _Entry] = {}
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self.last_refetched = 0  # domains whose XML the last read fetched (for tests and metrics)

    def read(self) -> LibvirtState:
        """Raises LibvirtUnavailable (and drops the connection) when libvirt cannot answer."""
        import libvirt

        conn = self._conn or self._open()
        try:
            return self._read(conn)
        except libvirt.libvirtError as exc:
            self.close()
            msg = str(exc).strip()
            raise LibvirtUnavailable(f"libvirt at {self.uri}: {msg}", hint_for(self.uri, msg)) from exc

    def _read(self, conn: Any) -> LibvirtState:
        errors: list[SourceError] = []
        now = self._clock()
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        listed = [(dom.UUIDString(), dom.name(), state, dom) for dom, state in domains_with_state(conn)]
        stale = [row for row in listed if self._stale(row[0], row[1], row[2], row[3], now, dirty)]
        xmls = fetch_xmls([row[3] for row in stale])
        for (uuid, name, state, dom), xml in zip(stale, xmls, strict=True):
            read = parse_read(name, uuid, state, xml, errors, self.deep)
            if read is None:
                self._entries.pop(uuid, None)  # not cached: tried again next read
                continue
            self._entries[uuid] = _Entry(state, dom.ID(), read, now + self._ttl(uuid))
        listed_uuids = {row[0] for row in listed}
        self._entries = {u: e for u, e in self._entries.items() if u in listed_uuids}
        self.last_refetched = len(stale)
        reads = [self._entries[uuid].read for uuid, *_ in listed if uuid in self._entries]
        nets, leases = read_networks(conn, errors)
        return state_of(reads, self._hostname, nets, errors, leases)

    def _stale(self, uuid: str, name: str, state: DomainState, dom: Any, now: float, dirty: set[str]) -> bool:
        entry = self._entries.get(uuid)
        if entry is None or uuid in dirty or now >= entry.expires:
            return True
        return (entry.read.info.name, entry.state, entry.dom_id) != (name, state, dom.ID())

    def _ttl(self, uuid: str) -> float:
        """Between half and all of max_age, fixed per domain: expiries spread over time."""
        return self.max_age * (0.5 + (zlib.crc32(uuid.encode()) % 1000) / 2000)

    def _open(self) -> Any:
        import libvirt

        if self.events:
            EventLoop.ensure()  # must precede the open: callbacks are bound to the loop
        self._conn = connect_read_only(self.uri)
        try:
            self._hostname = str(self._conn.getHostname())
            if self.events:
                self._register(self._conn)
        except libvirt.libvirtError as exc:
            self.close()
            msg = str(exc).strip()
            raise LibvirtUnavailable(f"libvirt at {self.uri}: {msg}", hint_for(self.uri, msg)) from exc
        return self._conn

    def _register(self, conn: Any) -> None:
        import libvirt

        for event in (
            libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
            libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
            libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
        ):
            conn.domainEventRegisterAny(None, event, self._on_event, None)
        with contextlib.suppress(libvirt.libvirtError):  # in-process drivers have no keepalive
            conn.setKeepAlive(5, 3)

    def _on_event(self, _conn: Any, dom: Any, *_rest: Any) -> None:
        # On the event loop thread: only mark (calling libvirt here could deadlock the loop).
        with self._dirty_lock:
            self._dirty.add(dom.UUIDString())

    def close(self) -> None:
        """Drop the connection and everything cached from it (callbacks die with it)."""
        import libvirt

        conn, self._conn = self._conn, None
        self._entries.clear()
        if conn is not None:
            with contextlib.suppress(libvirt.libvirtError):  # already broken: nothing to release
                conn.close()
