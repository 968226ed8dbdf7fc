"""Pools: add (no two may share a MAC), list with what each has left, remove."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from vifscope.model.mac import MacPool, MacRange, MacState, PoolUsage, overlapping
from vifscope.store.engine import StoreRefused
from vifscope.store.tables import mac_addresses, mac_pools

_A = mac_addresses.c
_LIST_HINT = "see the pools with 'vifscope mac pool list'"


def _pool(row: Sequence[Any]) -> MacPool:
    return MacPool(row[0], MacRange(row[1], row[2]), row[3])


def load_pools(conn: Connection) -> tuple[MacPool, ...]:
    p = mac_pools.c
    rows = conn.execute(select(p.name, p.first_mac, p.last_mac, p.quarantine_s).order_by(p.first_mac))
    return tuple(_pool(r) for r in rows)


def get_pool(conn: Connection, name: str) -> MacPool:
    p = mac_pools.c
    row = conn.execute(select(p.name, p.first_mac, p.last_mac, p.quarantine_s).where(p.name == name)).first()
    if row is None:
        raise StoreRefused(f"no MAC pool named {name!r}", _LIST_HINT)
    return _pool(row)


def _lock_pools(conn: Connection) -> None:
    # The overlap check reads every pool and then inserts: on PostgreSQL two `pool add` at
    # once could each miss the other, so they take turns (SQLite's BEGIN IMMEDIATE already does).
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE mac_pools IN SHARE ROW EXCLUSIVE MODE"))


def add_pool(engine: Engine, pool: MacPool, now: float) -> None:
    """StoreRefused when the name is taken or the range shares a MAC with another pool."""
    with engine.begin() as conn:
        _lock_pools(conn)
        clash = overlapping(pool.range, load_pools(conn))
        if clash:
            names = ", ".join(f"{c.name} ({c.range.text()})" for c in clash)
            raise StoreRefused(f"range {pool.range.text()} overlaps pool {names}", "pick a range no pool covers")
        try:
            conn.execute(
                insert(mac_pools).values(
                    name=pool.name,
                    first_mac=pool.range.start,
                    last_mac=pool.range.end,
                    quarantine_s=pool.quarantine_s,
                    created_at=now,
                )
            )
        except IntegrityError as exc:
            raise StoreRefused(f"a MAC pool named {pool.name!r} exists", _LIST_HINT) from exc


def pool_usages(engine: Engine, now: float) -> tuple[PoolUsage, ...]:
    """Each pool and what it has left, counted by range (a MAC imported before its pool
    existed counts as used: it is)."""
    quarantined = and_(_A.state == MacState.QUARANTINED.value, _A.reusable_at > now)
    out = []
    with engine.begin() as conn:
        for pool in load_pools(conn):
            used = func.sum(case((_A.state != MacState.QUARANTINED.value, 1), else_=0))
            held = func.sum(case((quarantined, 1), else_=0))
            row = conn.execute(select(used, held).where(_A.mac.between(pool.range.start, pool.range.end))).one()
            out.append(PoolUsage(pool, int(row[0] or 0), int(row[1] or 0)))
    return tuple(out)


def remove_pool(engine: Engine, name: str, force: bool) -> int:
    """Remove the pool; the MACs it handed out stay recorded (they are still on NICs) and
    keep blocking reuse. Returns how many were allocated. StoreRefused while any are, unless ``force``."""
    with engine.begin() as conn:
        pool = get_pool(conn, name)
        allocated = conn.execute(
            select(func.count()).where(
                _A.mac.between(pool.range.start, pool.range.end), _A.state == MacState.ALLOCATED.value
            )
        ).scalar_one()
        if allocated and not force:
            raise StoreRefused(
                f"pool {name!r} has {allocated} allocated MAC(s)",
                "release them first, or --force (their records stay and still block reuse)",
            )
        conn.execute(update(mac_addresses).where(_A.pool == name).values(pool=None))
        conn.execute(delete(mac_pools).where(mac_pools.c.name == name))
    return int(allocated)
