"""MAC addresses as numbers, pools as ranges of them, and what an allocation record says.

Pure: parsing, formatting, validation, overlap and quarantine arithmetic. The store
(vifscope.store) keeps pools and records in a database; this module decides what is valid.

A MAC is a 48-bit integer here (``0x525400100000``): ranges, sizes and "next free" are
integer arithmetic, and the store keeps the integer so the database can compare ranges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

MAC_BITS = 48
MAC_MAX = (1 << MAC_BITS) - 1
_MULTICAST = 0x01  # bit 0 of the first octet: group address, never a NIC's own
_LOCAL = 0x02  # bit 1 of the first octet: locally administered (not a vendor OUI)
_HEX_MAC = re.compile(r"^[0-9a-f]{1,2}([:-][0-9a-f]{1,2}){5}$")
DEFAULT_QUARANTINE_S = 3600  # ARP/neighbour caches and switch FDBs forget a MAC well within an hour


class MacError(ValueError):
    """A MAC, range or prefix that is malformed or refused (multicast, start after end)."""


class MacState(StrEnum):
    """allocated: handed out by a pool; imported: found in use on a host (``mac import``),
    inside a pool or not; quarantined: released, not reusable before ``reusable_at``."""

    ALLOCATED = "allocated"
    IMPORTED = "imported"
    QUARANTINED = "quarantined"


def parse_mac(text: str) -> int:
    """``52:54:00:ab:cd:ef`` (or with ``-``, any case, one-digit octets) as an integer."""
    norm = text.strip().lower()
    if not _HEX_MAC.match(norm):
        raise MacError(f"not a MAC address: {text!r} (want six hex octets such as 52:54:00:12:34:56)")
    value = 0
    for octet in re.split(r"[:-]", norm):
        value = value << 8 | int(octet, 16)
    return value


def format_mac(value: int) -> str:
    """The canonical lower-case, colon-separated form libvirt writes."""
    if not 0 <= value <= MAC_MAX:
        raise MacError(f"not a 48-bit MAC value: {value}")
    return ":".join(f"{value >> shift & 0xFF:02x}" for shift in range(40, -8, -8))


def normalize_mac(text: str) -> str:
    return format_mac(parse_mac(text))


def first_octet(value: int) -> int:
    return value >> 40


def is_multicast(value: int) -> bool:
    return bool(first_octet(value) & _MULTICAST)


def is_local(value: int) -> bool:
    return bool(first_octet(value) & _LOCAL)


@dataclass(frozen=True, order=True)
class MacRange:
    """Every MAC from ``start`` to ``end``, both included."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.start <= value <= self.end

    def overlaps(self, other: MacRange) -> bool:
        return self.start <= other.end and other.start <= self.end

    def text(self) -> str:
        return f"{format_mac(self.start)}-{format_mac(self.end)}"


def parse_range(text: str) -> MacRange:
    """``START-END`` with colon-separated MACs (``-`` is the separator, so not inside them)."""
    parts = text.strip().split("-")
    if len(parts) != 2:
        raise MacError(f"not a MAC range: {text!r} (want START-END, e.g. 52:54:00:10:00:00-52:54:00:1f:ff:ff)")
    return checked(MacRange(parse_mac(parts[0]), parse_mac(parts[1])))


def prefix_range(text: str) -> MacRange:
    """``52:54:00:3a``: every MAC that starts with these 1 to 5 octets."""
    octets = text.strip().lower().rstrip(":").split(":")
    if not 1 <= len(octets) <= 5 or not all(re.fullmatch(r"[0-9a-f]{1,2}", o) for o in octets):
        raise MacError(f"not a MAC prefix: {text!r} (want 1 to 5 hex octets, e.g. 52:54:00:3a)")
    free_bits = 8 * (6 - len(octets))
    value = 0
    for octet in octets:
        value = value << 8 | int(octet, 16)
    start = value << free_bits
    return checked(MacRange(start, start | ((1 << free_bits) - 1)))


def checked(r: MacRange) -> MacRange:
    """``r`` if it is a range a pool may hand out; MacError (refused) otherwise.

    A range whose first octet changes crosses an odd first octet, i.e. a multicast MAC.
    """
    if r.start > r.end:
        raise MacError(f"range start {format_mac(r.start)} is after its end {format_mac(r.end)}")
    if is_multicast(r.start) or first_octet(r.start) != first_octet(r.end):
        raise MacError(
            f"range {r.text()} holds multicast MACs (first octet odd): a NIC's MAC must be unicast; "
            "use a first octet such as 52, 02, 0a or fe"
        )
    return r


def advice(r: MacRange) -> tuple[str, ...]:
    """Valid but questionable: said, not refused."""
    notes = []
    if not is_local(r.start):
        notes.append(
            f"{format_mac(r.start)[:2]}: is not locally administered (second bit of the first octet clear): "
            "it may collide with a vendor's NICs; prefer x2:, x6:, xa: or xe: (libvirt uses 52:54:00)"
        )
    if r.size < 16:
        notes.append(f"the range holds only {r.size} MAC(s)")
    return tuple(notes)


@dataclass(frozen=True)
class MacPool:
    name: str
    range: MacRange
    quarantine_s: int = DEFAULT_QUARANTINE_S


def overlapping(new: MacRange, pools: tuple[MacPool, ...]) -> tuple[MacPool, ...]:
    """The pools whose range shares at least one MAC with ``new``."""
    return tuple(p for p in pools if p.range.overlaps(new))


def containing(value: int, pools: tuple[MacPool, ...]) -> MacPool | None:
    return next((p for p in pools if value in p.range), None)


@dataclass(frozen=True)
class MacRecord:
    """One row of the store: a MAC that is taken (allocated, in use somewhere, or quarantined).

    Times are seconds since the epoch (the store's clock is the caller's ``now``).
    """

    mac: int
    state: MacState
    pool: str | None = None
    domain: str | None = None
    host: str | None = None
    changed_at: float = 0.0
    reusable_at: float | None = None  # quarantined only

    @property
    def text(self) -> str:
        return format_mac(self.mac)


def reusable_at(released_at: float, quarantine_s: int) -> float:
    return released_at + max(0, quarantine_s)


def in_quarantine(record: MacRecord, now: float) -> bool:
    """Still blocked: quarantined and its time has not come (an expired one is free)."""
    return record.state is MacState.QUARANTINED and record.reusable_at is not None and now < record.reusable_at


@dataclass(frozen=True)
class PoolUsage:
    """``used``: allocated or in use (imported); ``quarantined``: released, still blocked."""

    pool: MacPool
    used: int
    quarantined: int

    @property
    def free(self) -> int:
        return self.pool.range.size - self.used - self.quarantined


def usage(pool: MacPool, records: tuple[MacRecord, ...], now: float) -> PoolUsage:
    """What a pool has left, from the records (the store counts in SQL; this is the rule)."""
    inside = [r for r in records if r.mac in pool.range]
    used = sum(1 for r in inside if r.state is not MacState.QUARANTINED)
    return PoolUsage(pool, used, sum(1 for r in inside if in_quarantine(r, now)))
