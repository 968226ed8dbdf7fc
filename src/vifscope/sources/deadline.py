"""A snapshot that always comes back in time: every source runs in its own thread with a deadline.

Why: the exporter and ``top`` must never hang. ``take_snapshot`` reads libvirt, links and
OVSDB one after the other, and a libvirt call to a stuck libvirtd blocks forever (the client
has no keepalive without an event loop). Here the three sources run side by side; one that
misses the deadline becomes a SourceError ("no answer within 2.0 s") and the snapshot is
partial. A thread cannot be killed, so a stuck read keeps its thread, and ``SourceWorker``
starts no second read of that source until the first returns: a hung libvirtd costs one
thread, not one per scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from vifscope.model import HostSnapshot, ObservedLink, SourceError
from vifscope.sources.cmd import CommandError
from vifscope.sources.facts import gather_host_facts
from vifscope.sources.kernel.links import NetlinkError, read_links
from vifscope.sources.kernel.tcdump import read_neighbors
from vifscope.sources.libvirt.conn import LibvirtUnavailable, read_libvirt
from vifscope.sources.libvirt.declared import DeclaredCache
from vifscope.sources.ovs import OvsError, ovs_installed, read_ovs
from vifscope.sources.snapshot import NEIGH_HINT, NETLINK_HINT, OVS_HINT, assemble

T = TypeVar("T")

STUCK_HINT = "the source did not answer in time; vifscope keeps answering without it until it does"
LIBVIRT_STUCK_HINT = "is libvirtd hung or overloaded? 'virsh -c URI list' should answer within a second"


class SourceStuck(RuntimeError):
    """The previous read of this source is still running (it missed an earlier deadline)."""


class SourceWorker:
    """Runs one source's blocking read in a daemon thread; at most one read in flight."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._busy_since: float | None = None

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        fut: Future[T] = Future()
        with self._lock:
            if self._busy_since is not None:
                stuck_for = time.monotonic() - self._busy_since
                fut.set_exception(SourceStuck(f"previous read still running after {stuck_for:.1f} s"))
                return fut
            self._busy_since = time.monotonic()
        threading.Thread(target=self._run, args=(fn, fut), name=f"vifscope-{self.name}", daemon=True).start()
        return fut

    def _run(self, fn: Callable[[], T], fut: Future[T]) -> None:
        try:
            fut.set_result(fn())
        except BaseException as exc:  # handed to the caller through the future, not swallowed
            fut.set_exception(exc)
        finally:
            with self._lock:
                self._busy_since = None

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._busy_since is not None


@dataclass(frozen=True)
class TimedSnapshot:
    """A snapshot plus when its counters were read and how long each source took.

    ``links_at`` is ``time.monotonic()`` in the middle of the link dump (None if it failed):
    rates divide counter deltas by the time between two dumps, not between two snapshots.
    """

    snapshot: HostSnapshot
    links_at: float | None
    source_seconds: tuple[tuple[str, float], ...]


def _stamp(done_at: dict[str, float], name: str, _fut: Future[Any]) -> None:
    done_at.setdefault(name, time.monotonic())


def _timed_links(timeout: float, ports: bool) -> tuple[tuple[ObservedLink, ...], float]:
    start = time.monotonic()
    links = read_links(timeout=timeout, ports=ports)
    return links, (start + time.monotonic()) / 2


# How each source's own failure becomes a SourceError: (exception type, hint). Anything
# else a source raises is a bug and propagates.
_EXPECTED: dict[str, tuple[type[Exception], str]] = {
    "libvirt": (LibvirtUnavailable, LIBVIRT_STUCK_HINT),
    "netlink": (NetlinkError, NETLINK_HINT),
    "ovs": (OvsError, OVS_HINT),
    "facts": (CommandError, STUCK_HINT),  # gather_host_facts guards its parts; this is the rest
    "neigh": (CommandError, NEIGH_HINT),  # guest addresses by ARP (``addresses``)
}


class DeadlineSnapshotter:
    """Takes snapshots whose sources each get at most ``timeout`` seconds (run in parallel).

    ``deep`` adds HostFacts (what doctor's checks read): gathered in parallel with the other
    sources, then joined with libvirt's vifs and networks once both are in.
    ``declared_max_age`` keeps libvirt's side between snapshots (``DeclaredCache``: one
    connection, a domain's XML re-read on change or after that many seconds); None reads
    everything afresh each time. ``addresses`` adds the neighbour dump that guest addresses by
    ARP come from (deep snapshots have it in their facts).
    """

    def __init__(
        self,
        uri: str,
        timeout: float = 3.0,
        *,
        deep: bool = False,
        declared_max_age: float | None = None,
        addresses: bool = False,
    ) -> None:
        self.uri = uri
        self.timeout = timeout
        self.deep = deep
        self.addresses = addresses
        self.declared = (
            DeclaredCache(uri, max_age=declared_max_age, deep=deep) if declared_max_age is not None else None
        )
        self._workers = {name: SourceWorker(name) for name in _EXPECTED}

    def _readers(self, timeout: float) -> dict[str, Callable[[], Any]]:
        readers: dict[str, Callable[[], Any]] = {
            "libvirt": self.declared.read if self.declared else lambda: read_libvirt(self.uri, deep=self.deep),
            "netlink": lambda: _timed_links(timeout, self.deep),
        }
        if ovs_installed():  # OVS not installed is not an error (most hosts have none)
            readers["ovs"] = lambda: read_ovs(timeout=max(1, round(timeout)))
        if self.deep:
            readers["facts"] = lambda: gather_host_facts(self.uri)
        elif self.addresses:
            readers["neigh"] = lambda: read_neighbors(timeout=timeout)
        return readers

    def take(self, timeout: float | None = None) -> TimedSnapshot:
        """All sources at once; each missing the deadline is a SourceError, never a hang."""
        limit = self.timeout if timeout is None else timeout
        taken_at, start = datetime.now(UTC), time.monotonic()
        futures = {name: self._workers[name].submit(fn) for name, fn in self._readers(limit).items()}
        started = dict.fromkeys(futures, start)
        done_at: dict[str, float] = {}
        for name, fut in futures.items():
            fut.add_done_callback(partial(_stamp, done_at, name))
        wait(futures.values(), timeout=max(0.0, start + limit - time.monotonic()))
        errors: list[SourceError] = []
        results = {name: self._result(name, fut, limit, errors) for name, fut in futures.items()}
        now = time.monotonic()
        seconds = tuple((n, round(done_at.get(n, now) - started[n], 6)) for n in futures)
        return _assemble(self.uri, taken_at, results, errors, seconds)

    def _result(self, name: str, fut: Future[Any], limit: float, errors: list[SourceError]) -> Any:
        if not fut.done():
            hint = LIBVIRT_STUCK_HINT if name == "libvirt" else STUCK_HINT
            errors.append(SourceError(name, f"{name}: no answer within {limit:.1f} s", hint))
            return None
        exc = fut.exception()
        if exc is None:
            return fut.result()
        expected, hint = _EXPECTED[name]
        if isinstance(exc, SourceStuck):
            errors.append(SourceError(name, f"{name}: {exc}", hint))
            return None
        if isinstance(exc, expected):
            errors.append(SourceError(name, str(exc), getattr(exc, "hint", "") or hint))
            return None
        raise exc


def _assemble(
    uri: str,
    taken_at: datetime,
    results: dict[str, Any],
    errors: list[SourceError],
    seconds: tuple[tuple[str, float], ...],
) -> TimedSnapshot:
    """The same HostSnapshot ``take_snapshot`` builds, from whatever answered."""
    dumped: tuple[tuple[ObservedLink, ...], float] | None = results.get("netlink")
    snap = assemble(
        uri, taken_at, results.get("libvirt"), dumped[0] if dumped else (), results.get("ovs"),
        results.get("facts"), errors, results.get("neigh"),
    )  # fmt: skip
    return TimedSnapshot(snap, dumped[1] if dumped else None, seconds)
