"""Allocation, release, import and listing of MACs: each one database transaction.

The guarantee is the primary key on ``mac_addresses.mac``: a MAC is taken by inserting its
row, and an insert that meets an existing row (committed, or in flight in another
transaction, which PostgreSQL waits for) inserts nothing. There is no "read the free ones,
then write" step that two processes could both pass. Candidates are drawn at random inside
the range, so concurrent allocators rarely even try the same one; when random draws keep
hitting taken MACs (a full pool), SQL finds the next gap from a random point, and finding
none is the proof of exhaustion. ``bench/mac_alloc.py`` measures both strategies.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, and_, delete, exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from vifscope.model.mac import MacPool, MacRange, MacRecord, MacState, containing, format_mac, reusable_at
from vifscope.store.engine import PoolExhausted, StoreRefused
from vifscope.store.pools import get_pool, load_pools
from vifscope.store.tables import mac_addresses, mac_events

_A = mac_addresses.c
RANDOM_TRIES = 4  # random draws per MAC before asking SQL for a gap
TXN_RETRIES = 8  # whole-transaction retries after a PostgreSQL deadlock / serialization failure
_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
# INSERT ... ON CONFLICT DO NOTHING by dialect (the two make_engine accepts): a taken candidate
# inserts nothing, with no exception and no savepoint per try; the primary key still decides.
_INSERT: dict[str, Callable[[Any], Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
T = TypeVar("T")


class Strategy(StrEnum):
    RANDOM = "random"  # random draws, then the next gap after a random point
    FIRST_FREE = "first-free"  # the lowest free MAC: the linear scan, kept to measure against


@dataclass(frozen=True)
class ImportResult:
    added: tuple[int, ...]
    revived: tuple[int, ...]  # were quarantined (released) yet still on a NIC: in use again
    known: int


def _retrying(fn: Callable[[], T]) -> T:
    for attempt in range(TXN_RETRIES + 1):
        try:
            return fn()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _RETRYABLE or attempt == TXN_RETRIES:
                raise
    raise AssertionError("unreachable")


def _take(conn: Connection, mac: int, row: dict[str, Any]) -> bool:
    """Insert the row for ``mac``; False when another row (or transaction) has it."""
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT.
    stmt = _INSERT[conn.dialect.name](mac_addresses).values(mac=mac, **row).on_conflict_do_nothing()
    return conn.execute(stmt.returning(_A.mac)).first() is not None


def next_free(conn: Connection, lo: int, hi: int) -> int | None:
    """The lowest MAC in [lo, hi] with no row, or None. Walks the key index from ``lo`` to
    the first gap: as long as the run of taken MACs there, not the whole range."""
    if lo > hi:
        return None
    if conn.execute(select(_A.mac).where(_A.mac == lo)).first() is None:
        return lo
    m, n = mac_addresses.alias("m"), mac_addresses.alias("n")
    gap = (
        select(m.c.mac + 1)
        .where(m.c.mac >= lo, m.c.mac < hi, ~exists().where(n.c.mac == m.c.mac + 1))
        .order_by(m.c.mac)
        .limit(1)
    )
    found = conn.execute(gap).scalar()
    return None if found is None else int(found)


def _take_one(conn: Connection, r: MacRange, rng: random.Random, strategy: Strategy, row: dict[str, Any]) -> int:
    if strategy is Strategy.RANDOM:
        for _ in range(RANDOM_TRIES):
            drawn = rng.randint(r.start, r.end)
            if _take(conn, drawn, row):
                return drawn
    while True:  # each lost race means another transaction took one: the pool is finite
        lo = rng.randint(r.start, r.end) if strategy is Strategy.RANDOM else r.start
        gap = next_free(conn, lo, r.end)
        candidate = gap if gap is not None else next_free(conn, r.start, lo - 1)
        if candidate is None:
            raise PoolExhausted("pool exhausted")
        if _take(conn, candidate, row):
            return candidate


def _expire(conn: Connection, r: MacRange, now: float) -> None:
    """Quarantined MACs of the range whose time has come become free (their rows go)."""
    gone = conn.execute(
        delete(mac_addresses)
        .where(_A.mac.between(r.start, r.end), _A.state == MacState.QUARANTINED.value, _A.reusable_at <= now)
        .returning(_A.mac, _A.pool, _A.domain, _A.host)
    ).all()
    if gone:
        conn.execute(
            insert(mac_events),
            [{"at": now, "mac": g[0], "action": "expire", "pool": g[1], "domain": g[2], "host": g[3]} for g in gone],
        )


def allocate(
    engine: Engine,
    pool_name: str,
    count: int = 1,
    *,
    now: float,
    rng: random.Random,
    domain: str | None = None,
    host: str | None = None,
    strategy: Strategy = Strategy.RANDOM,
) -> tuple[int, ...]:
    """``count`` MACs from the pool, all or none (PoolExhausted: nothing was taken)."""
    if count < 1:
        raise StoreRefused(f"--count must be at least 1, got {count}")

    def txn() -> tuple[int, ...]:
        with engine.begin() as conn:
            pool = get_pool(conn, pool_name)
            _expire(conn, pool.range, now)
            row = {
                "state": MacState.ALLOCATED.value,
                "pool": pool.name,
                "domain": domain,
                "host": host,
                "changed_at": now,
            }
            try:
                macs = tuple(_take_one(conn, pool.range, rng, strategy, row) for _ in range(count))
            except PoolExhausted as exc:
                raise _exhausted(pool, count) from exc
            events = [
                {"at": now, "mac": m, "action": "allocate", "pool": pool.name, "domain": domain, "host": host}
                for m in macs
            ]
            conn.execute(insert(mac_events), events)
            return macs

    return _retrying(txn)


def _exhausted(pool: MacPool, count: int) -> PoolExhausted:
    return PoolExhausted(
        f"pool {pool.name!r} ({pool.range.text()}) has fewer than {count} free MAC(s); nothing was allocated",
        "add another pool ('vifscope mac pool add'), release unused MACs, or wait for quarantined ones",
    )


def release(engine: Engine, mac: int, *, now: float, default_quarantine_s: int, host: str | None = None) -> MacRecord:
    """Quarantine ``mac`` (allocated or imported) until its pool's quarantine has passed.
    Releasing a quarantined MAC again changes nothing. StoreRefused if the store has no row."""
    with engine.begin() as conn:
        row = conn.execute(select(mac_addresses).where(_A.mac == mac)).first()
        if row is None:
            raise StoreRefused(f"{format_mac(mac)} is not in the store", "see 'vifscope mac list'")
        if row.state == MacState.QUARANTINED.value:
            return _record(row)
        pool = containing(mac, load_pools(conn))
        until = reusable_at(now, pool.quarantine_s if pool else default_quarantine_s)
        values = {"state": MacState.QUARANTINED.value, "changed_at": now, "reusable_at": until}
        conn.execute(update(mac_addresses).where(_A.mac == mac).values(**values))
        event = {"at": now, "mac": mac, "action": "release", "pool": row.pool, "domain": row.domain, "host": host}
        conn.execute(insert(mac_events).values(**event))
        return _record(conn.execute(select(mac_addresses).where(_A.mac == mac)).one())


def _record(row: Any) -> MacRecord:
    return MacRecord(row.mac, MacState(row.state), row.pool, row.domain, row.host, row.changed_at, row.reusable_at)


def records(engine: Engine, pool_name: str | None = None) -> tuple[MacRecord, ...]:
    with engine.begin() as conn:
        query = select(mac_addresses).order_by(_A.mac)
        if pool_name is not None:
            r = get_pool(conn, pool_name).range
            query = query.where(_A.mac.between(r.start, r.end))
        return tuple(_record(row) for row in conn.execute(query))


def _chunks(items: Sequence[int], size: int = 500) -> list[Sequence[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def import_macs(engine: Engine, in_use: Sequence[tuple[int, str]], *, host: str, now: float) -> ImportResult:
    """Record every (MAC, domain) a host's domains use, so no pool hands one out: new ones as
    imported (inside a pool or not), released-but-still-used ones imported again."""
    first: dict[int, str] = {}
    for mac, dom in in_use:
        first.setdefault(mac, dom)
    with engine.begin() as conn:
        pools = load_pools(conn)
        state: dict[int, str] = {}
        for chunk in _chunks(sorted(first)):
            state.update((r[0], r[1]) for r in conn.execute(select(_A.mac, _A.state).where(_A.mac.in_(chunk))))
        revived = tuple(m for m in sorted(state) if state[m] == MacState.QUARANTINED.value)
        added = tuple(m for m in sorted(first) if m not in state)
        rows = [_imported_row(m, first[m], host, now, pools) for m in added]
        for chunk in _chunks(revived):
            conn.execute(
                update(mac_addresses)
                .where(and_(_A.mac.in_(chunk), _A.state == MacState.QUARANTINED.value))
                .values(state=MacState.IMPORTED.value, changed_at=now, reusable_at=None)
            )
        if rows:
            conn.execute(_INSERT[conn.dialect.name](mac_addresses).on_conflict_do_nothing(), rows)
        events = [
            {"at": now, "mac": m, "action": "import", "pool": None, "domain": first[m], "host": host} for m in added
        ]
        events += [
            {"at": now, "mac": m, "action": "revive", "pool": None, "domain": first[m], "host": host} for m in revived
        ]
        if events:
            conn.execute(insert(mac_events), events)
    return ImportResult(added, revived, len(state) - len(revived))


def _imported_row(mac: int, domain: str, host: str, now: float, pools: tuple[MacPool, ...]) -> dict[str, Any]:
    pool = containing(mac, pools)
    return {
        "mac": mac,
        "state": MacState.IMPORTED.value,
        "pool": pool.name if pool else None,
        "domain": domain,
        "host": host,
        "changed_at": now,
        "reusable_at": None,
    }
