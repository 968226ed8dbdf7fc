"""Guest addresses as status shows them: what they are joined from (``AddressFacts``, on every
HostSnapshot) and one address of one vif (``VifAddress``, on every VifBinding). Pure data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from vifscope.model.host import AddressSource, DhcpLease, GuestAddress, NeighEntry

T = TypeVar("T")


@dataclass(frozen=True)
class VifAddress:
    """One guest address of one vif as status shows it; ``family`` is "ipv4" or "ipv6"."""

    address: str
    prefix: int | None
    family: str
    source: AddressSource


@dataclass(frozen=True)
class AddressFacts:
    """What status joins into each vif's guest addresses. A part that was not read is None
    (the agent: not asked, or not allowed; ``notes`` says which); an empty tuple: read, none."""

    leases: tuple[DhcpLease, ...] | None = None  # every active network's, one call per network
    neighbors: tuple[NeighEntry, ...] | None = None  # the host's neighbour table, one dump
    agent: tuple[GuestAddress, ...] | None = None  # guest agents (read-write connection only)
    notes: tuple[str, ...] = ()

    @cached_property
    def leases_by_mac(self) -> dict[str, tuple[DhcpLease, ...]]:
        return _group(self.leases or (), lambda le: le.mac)

    @cached_property
    def neighbors_by_mac(self) -> dict[str, tuple[NeighEntry, ...]]:
        return _group(self.neighbors or (), lambda n: n.mac or "")

    @cached_property
    def agent_by_mac(self) -> dict[str, tuple[GuestAddress, ...]]:
        return _group(self.agent or (), lambda a: a.mac)

    @cached_property
    def macs(self) -> frozenset[str]:
        """Every MAC some source saw: most vifs at scale are not among them, and skip the join."""
        return frozenset(self.leases_by_mac) | frozenset(self.neighbors_by_mac) | frozenset(self.agent_by_mac)


def _group(items: Iterable[T], key: Callable[[T], str]) -> dict[str, tuple[T, ...]]:
    grouped: dict[str, list[T]] = {}
    for item in items:
        grouped.setdefault(key(item), []).append(item)
    return {k: tuple(v) for k, v in grouped.items()}
