"""What the watchers report to the engine: one frozen dataclass per kind of event.

Producers (the libvirt event loop thread, the netlink monitor thread, the OVSDB monitor,
signal handlers, timers) put these on one queue; the engine dispatches on the type
through a table (``watch.handlers.HANDLERS``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinkEvent:
    """An rtnetlink RTM_NEWLINK / RTM_DELLINK message (``ip monitor link``).

    ``bridge_port_msg`` marks the AF_BRIDGE copy the bridge driver sends for its ports.
    """

    action: str  # "new" | "del"
    ifindex: int
    name: str
    master_ifindex: int | None = None  # IFLA_MASTER
    admin_up: bool = False  # IFF_UP
    carrier: bool = False  # IFF_LOWER_UP
    oper_state: str | None = None  # IFLA_OPERSTATE
    kind: str | None = None  # IFLA_INFO_KIND
    bridge_port_msg: bool = False


@dataclass(frozen=True)
class LinkBatch:
    """Link events read together (one recv); the engine coalesces them into one dump."""

    events: tuple[LinkEvent, ...]


@dataclass(frozen=True)
class LinksOverrun:
    """Link events were lost: the netlink socket overflowed (ENOBUFS: the kernel drops what
    does not fit in the receive buffer) or was reopened. Which links changed is unknown, so
    the engine re-dumps every link. ``total`` counts the overflows of this watch so far."""

    reason: str = "ENOBUFS"
    total: int = 1


@dataclass(frozen=True)
class DomainChanged:
    """A libvirt domain event: lifecycle (virDomainEventType), device added / removed."""

    uuid: str
    name: str
    what: str  # "lifecycle:started", "device-added:net0", ...


@dataclass(frozen=True)
class NetworkChanged:
    """A libvirt network lifecycle event (defined, undefined, started, stopped)."""

    name: str
    what: str


@dataclass(frozen=True)
class OvsChanged:
    """OVSDB's Interface table changed (a port added, removed, external_ids edited)."""


@dataclass(frozen=True)
class SourceDown:
    """A live source was lost (libvirtd closed the connection, ovsdb-server went away)."""

    source: str  # "libvirt" | "ovs" | "netlink"
    error: str


@dataclass(frozen=True)
class Stop:
    """SIGTERM / SIGINT: leave cleanly."""

    signal: str


@dataclass(frozen=True)
class Reload:
    """SIGHUP: re-read the configuration file."""


WatchEvent = LinkBatch | LinksOverrun | DomainChanged | NetworkChanged | OvsChanged | SourceDown | Stop | Reload
