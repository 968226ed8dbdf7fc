"""Reads the watcher does between events, each returning data or a SourceError (never raising
for a source that is down): the kernel link dump, OVSDB, and a full resync.

Thin wrappers over vifscope.sources (the same readers ``status`` uses), so a watch verdict
and a ``status`` verdict always come from the same code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vifscope.model import HostSnapshot, ObservedLink, SourceError
from vifscope.sources.deadline import LIBVIRT_STUCK_HINT, SourceStuck, SourceWorker
from vifscope.sources.kernel.links import NetlinkError, read_links
from vifscope.sources.libvirt.conn import LibvirtState, LibvirtUnavailable, read_libvirt
from vifscope.sources.ovs import OvsError, OvsState, ovs_installed, read_ovs
from vifscope.sources.snapshot import NETLINK_HINT, OVS_HINT, take_snapshot


def links_or_error() -> tuple[tuple[ObservedLink, ...] | None, SourceError | None]:
    try:
        return read_links(), None
    except NetlinkError as exc:
        return None, SourceError("netlink", str(exc), NETLINK_HINT)


def ovs_or_error() -> tuple[OvsState | None, SourceError | None]:
    """OVSDB's state; (None, None) when OVS is not installed (not an error)."""
    if not ovs_installed():
        return None, None
    try:
        return read_ovs(), None
    except OvsError as exc:
        return None, SourceError("ovs", str(exc), OVS_HINT)


@dataclass(frozen=True)
class FullRead:
    """A full resync: the new snapshot, and libvirt's error when it could not be read."""

    snapshot: HostSnapshot
    libvirt_error: SourceError | None


# A full read of libvirt (every domain's XML) gets this long; a hung libvirtd then counts as
# down and the engine carries on. One read at a time: a stuck one keeps its thread until it ends.
LIBVIRT_READ_TIMEOUT = 15.0


def read_libvirt_within(worker: SourceWorker, uri: str, timeout: float = LIBVIRT_READ_TIMEOUT) -> LibvirtState:
    """``read_libvirt`` on ``worker``'s thread, given up after ``timeout`` (LibvirtUnavailable)."""
    fut = worker.submit(lambda: read_libvirt(uri))
    try:
        return fut.result(timeout=timeout)
    except TimeoutError as exc:
        raise LibvirtUnavailable(f"libvirt at {uri}: no answer within {timeout:.0f} s", LIBVIRT_STUCK_HINT) from exc
    except SourceStuck as exc:
        raise LibvirtUnavailable(f"libvirt at {uri}: {exc}", LIBVIRT_STUCK_HINT) from exc


def full_read(uri: str, previous: HostSnapshot | None, worker: SourceWorker | None = None) -> FullRead:
    """Every source once, exactly as ``status`` reads them (libvirt on ``worker``, with a
    deadline, when given). When libvirt is unreachable the previous declared state is kept (a
    libvirtd restart must not look like every VM vanishing)."""
    lost: list[LibvirtUnavailable] = []

    def read(u: str) -> LibvirtState:
        try:
            return read_libvirt_within(worker, u) if worker is not None else read_libvirt(u)
        except LibvirtUnavailable as exc:
            lost.append(exc)
            raise

    snap = take_snapshot(uri, read_libvirt_fn=read)
    if not lost:
        return FullRead(snap, None)
    error = SourceError("libvirt", str(lost[0]), lost[0].hint)
    if previous is not None:
        snap = dataclasses.replace(snap, host=previous.host, vifs=previous.vifs, networks=previous.networks)
    return FullRead(snap, error)
