"""A vif's state as ``fleet sync`` keeps its history, and which intervals a new answer closes
and opens (pure: the store applies it, vifscope.fleet.history makes the states).

A vif is ``(domain_uuid, index)`` on its host. Its state is what a user asks the history
about: verdict, problems, where it is plugged (source, target), its MAC and type, the domain's
name. While that state stays the same the open interval stays open; when it changes, the open
interval is closed at the sync's time and a new one opened; a vif the agent no longer reports
(domain undefined, NIC unplugged) has its interval closed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

VifKey = tuple[str, int]  # (domain_uuid, index)
AddressRow = tuple[str, int, str, str | None]  # (domain_uuid, index, address, mac)


@dataclass(frozen=True)
class VifState:
    domain_uuid: str
    index: int
    domain: str
    mac: str | None
    type: str
    source: str | None
    target: str | None
    status: str
    problems: str  # sorted, space-separated: one column, compared as a whole

    @property
    def key(self) -> VifKey:
        return (self.domain_uuid, self.index)


@dataclass(frozen=True)
class HistoryChange:
    close: tuple[int, ...]  # ids of open rows to close
    open: tuple[VifState, ...]  # states to open an interval for
    unchanged: int


@dataclass(frozen=True)
class HostRecord:
    """What ``fleet_hosts`` keeps of a host that answered."""

    host_id: str | None
    version: str | None
    status: str | None
    vifs: int
    findings: tuple[tuple[str, int], ...]  # (severity, count) for error, warning, info


@dataclass(frozen=True)
class HostSync:
    host: str
    error: str | None  # why nothing but fleet_hosts was written (None: the vifs were)
    vifs: int = 0
    opened: int = 0
    closed: int = 0


def diff(open_rows: Mapping[VifKey, tuple[int, VifState]], seen: Sequence[VifState]) -> HistoryChange:
    """The changes that make the open intervals ``open_rows`` (key → (row id, state)) say ``seen``."""
    close: list[int] = []
    opened: list[VifState] = []
    unchanged = 0
    seen_keys = set()
    for state in seen:
        seen_keys.add(state.key)
        row = open_rows.get(state.key)
        if row is not None and row[1] == state:
            unchanged += 1
            continue
        if row is not None:
            close.append(row[0])
        opened.append(state)
    close.extend(row_id for key, (row_id, _) in open_rows.items() if key not in seen_keys)
    return HistoryChange(tuple(sorted(close)), tuple(opened), unchanged)


@dataclass(frozen=True)
class FleetPeerVif:
    """A vif another fleet host's agent reports (``GET /api/v1/vifs``), as ``flows --inventory``
    names the peers that are not on this host: by its guest addresses, else by its MAC."""

    host: str  # the inventory's name for the host
    domain: str
    mac: str | None  # lowercase
    addresses: tuple[str, ...] = ()
    active: bool = True  # the domain runs (or is paused): its MAC and addresses are on the wire
