"""Record a MAC chosen by hand (``vifscope attach --mac M``) in the pool that holds it.

One transaction, decided by the primary key as ``allocate`` is: the row is inserted, or the
MAC was already taken (by another domain, or quarantined) and nothing changes. A MAC that
``mac allocate --domain D`` reserved for this very domain is adopted, not refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from vifscope.model.mac import MacState, containing, format_mac
from vifscope.store.alloc import _INSERT
from vifscope.store.engine import StoreRefused
from vifscope.store.pools import load_pools
from vifscope.store.tables import mac_addresses, mac_events

_A = mac_addresses.c


@dataclass(frozen=True)
class Claim:
    """``taken``: this call inserted the row (the caller releases it if the attach fails);
    False with a pool: the MAC was already reserved for the domain; ``pool`` None: in no pool,
    so not recorded at all."""

    mac: int
    pool: str | None
    taken: bool


def claim(engine: Engine, mac: int, *, domain: str, host: str, now: float) -> Claim:
    """StoreRefused when the store has ``mac`` for another domain, or still quarantined."""
    with engine.begin() as conn:
        pool = containing(mac, load_pools(conn))
        if pool is None:
            return Claim(mac, None, False)
        row = conn.execute(select(mac_addresses).where(_A.mac == mac)).first()
        if row is not None and row.state == MacState.QUARANTINED.value and (row.reusable_at or 0) <= now:
            conn.execute(delete(mac_addresses).where(_A.mac == mac))  # its quarantine is over: free
            row = None
        if row is not None:
            if row.state == MacState.ALLOCATED.value and row.domain in (domain, None):
                conn.execute(update(mac_addresses).where(_A.mac == mac).values(domain=domain, host=host))
                return Claim(mac, pool.name, False)
            held = f"{row.state}" + (f" for {row.domain}" if row.domain else "")
            raise StoreRefused(f"the MAC store has {format_mac(mac)}: {held}", "use --mac auto")
        values = {"state": MacState.ALLOCATED.value, "pool": pool.name, "domain": domain, "host": host}
        stmt = _INSERT[conn.dialect.name](mac_addresses).values(mac=mac, changed_at=now, **values)
        if conn.execute(stmt.on_conflict_do_nothing().returning(_A.mac)).first() is None:
            raise StoreRefused(f"{format_mac(mac)} was just taken by another allocation", "use --mac auto")
        event = {"at": now, "mac": mac, "action": "allocate", "pool": pool.name, "domain": domain, "host": host}
        conn.execute(insert(mac_events).values(**event))
        return Claim(mac, pool.name, True)
