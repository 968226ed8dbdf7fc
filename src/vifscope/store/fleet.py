"""``fleet sync``'s writes: one transaction per host.

The transaction starts by upserting the host's ``fleet_hosts`` row; on PostgreSQL that row
lock serializes two hubs syncing the same host (the second reads the first's committed
intervals afterwards, READ COMMITTED), and SQLite's ``BEGIN IMMEDIATE`` serializes every
writer. The partial unique index on open intervals is the backstop: should two transactions
still both open one, the second fails and is retried once from a fresh read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from vifscope.model.fleetvif import AddressRow, HistoryChange, HostRecord, HostSync, VifKey, VifState, diff
from vifscope.store.engine import StoreUnavailable
from vifscope.store.tables import fleet_addresses, fleet_hosts, fleet_vifs

_STATE_COLUMNS = ("domain_uuid", "vif_index", "domain", "mac", "type", "source", "target", "status", "problems")


def _insert(conn: Connection, table: Any) -> Any:
    """INSERT with ``on_conflict_do_update``: both dialects spell it the same way."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _host_row(
    conn: Connection, host: str, record: HostRecord | None, error: str | None, now: float, tag: str | None = None
) -> None:
    values: dict[str, Any] = {"attempted_at": now, "error": error}
    if record is not None:
        values |= {
            "answer_tag": tag,
            "synced_at": now,
            "host_id": record.host_id,
            "version": record.version,
            "status": record.status,
            "vifs": record.vifs,
            **{f"findings_{sev}": n for sev, n in record.findings},
        }
    stmt = _insert(conn, fleet_hosts).values(name=host, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))


def _open_rows(conn: Connection, host: str) -> dict[VifKey, tuple[int, VifState]]:
    cols = [fleet_vifs.c[c] for c in _STATE_COLUMNS]
    rows = conn.execute(
        select(fleet_vifs.c.id, *cols).where(fleet_vifs.c.host == host, fleet_vifs.c.valid_to.is_(None))
    )
    out = {}
    for row_id, *values in rows:
        state = VifState(*values)
        out[state.key] = (row_id, state)
    return out


def _values(s: VifState) -> tuple[Any, ...]:
    return (s.domain_uuid, s.index, s.domain, s.mac, s.type, s.source, s.target, s.status, s.problems)


def _apply(conn: Connection, host: str, change: HistoryChange, now: float) -> None:
    if change.close:
        conn.execute(update(fleet_vifs).where(fleet_vifs.c.id.in_(change.close)).values(valid_to=now))
    if change.open:
        rows = [
            {"host": host, "valid_from": now, "valid_to": None, **dict(zip(_STATE_COLUMNS, _values(s), strict=True))}
            for s in change.open
        ]
        conn.execute(fleet_vifs.insert(), rows)


def _addresses(conn: Connection, host: str, addresses: Sequence[AddressRow], now: float) -> None:
    keys = ("domain_uuid", "vif_index", "address", "mac")
    rows = [{"host": host, "first_seen": now, "last_seen": now, **dict(zip(keys, a, strict=True))} for a in addresses]
    if rows:
        stmt = _insert(conn, fleet_addresses)
        pk = ["host", "domain_uuid", "vif_index", "address"]
        conn.execute(
            stmt.on_conflict_do_update(index_elements=pk, set_={"last_seen": now, "mac": stmt.excluded.mac}), rows
        )


def _write(
    engine: Engine,
    host: str,
    record: HostRecord,
    states: Sequence[VifState],
    addresses: Sequence[AddressRow],
    now: float,
    tag: str | None,
) -> HostSync:
    with engine.begin() as conn:
        _host_row(conn, host, record, None, now, tag)
        change = diff(_open_rows(conn, host), states)
        _apply(conn, host, change, now)
        _addresses(conn, host, addresses, now)
    return HostSync(host, None, len(states), len(change.open), len(change.close))


def record_error(engine: Engine, host: str, error: str, now: float) -> HostSync:
    """A host that did not answer: its attempt and error; its vifs' rows stay as last known."""
    with store_errors(), engine.begin() as conn:
        _host_row(conn, host, None, error, now)
    return HostSync(host, error)


def touch_host(engine: Engine, host: str, tag: str, now: float) -> int | None:
    """A host whose agent answered every question with 304 for the answer tagged ``tag``:
    when its rows were last written from that very answer, only its ``fleet_hosts`` row is
    touched (attempted/synced now, no error) and no vif or address row is written. Its vif
    count; None when the rows say otherwise (another hub wrote a newer answer, or none was
    written): then write it whole."""
    with store_errors(), engine.begin() as conn:
        done = conn.execute(
            update(fleet_hosts)
            .where(fleet_hosts.c.name == host, fleet_hosts.c.answer_tag == tag)
            .values(attempted_at=now, synced_at=now, error=None)
        ).rowcount
        if not done:
            return None
        return int(conn.execute(select(fleet_hosts.c.vifs).where(fleet_hosts.c.name == host)).scalar_one())


def sync_host(
    engine: Engine,
    host: str,
    record: HostRecord,
    states: Sequence[VifState],
    addresses: Sequence[AddressRow],
    now: float,
    tag: str | None = None,
) -> HostSync:
    """Write one host's answer (whose ETags are ``tag``) in one transaction; retried once
    should another hub have opened the same interval first (the unique index refused ours)."""
    with store_errors():
        try:
            return _write(engine, host, record, states, addresses, now, tag)
        except IntegrityError:
            return _write(engine, host, record, states, addresses, now, tag)


@contextmanager
def store_errors() -> Iterator[None]:
    """OperationalError (the database went away mid-transaction, nothing committed) →
    StoreUnavailable: one line and a hint."""
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailable(
            f"store: {str(exc.orig).strip().splitlines()[0]}", "is the database running and reachable?"
        ) from exc
