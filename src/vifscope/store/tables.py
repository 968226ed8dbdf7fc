"""The schema, as SQLAlchemy Core tables. Alembic's migrations create it; this is what the
queries are written against (tests check the two agree).

MACs are kept as 48-bit integers (BIGINT) so a pool's range is a ``BETWEEN`` over the
primary-key index. ``mac_addresses.mac`` being the primary key is the allocation guarantee:
two transactions can never both hold a row for the same MAC.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table

metadata = MetaData()

mac_pools = Table(
    "mac_pools",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("first_mac", BigInteger, nullable=False),
    Column("last_mac", BigInteger, nullable=False),
    Column("quarantine_s", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

# One row per MAC that is taken: allocated, in use on a host, or quarantined after release.
mac_addresses = Table(
    "mac_addresses",
    metadata,
    Column("mac", BigInteger, primary_key=True, autoincrement=False),
    Column("state", String(16), nullable=False),
    Column("pool", String(64), nullable=True),  # informational: usage is counted by range
    Column("domain", String(255), nullable=True),
    Column("host", String(255), nullable=True),
    Column("changed_at", Float, nullable=False),
    Column("reusable_at", Float, nullable=True),
    Index("ix_mac_addresses_reusable_at", "reusable_at"),
)

# Every change allocate/release/import/expiry made, one row each (what happened, not a log line).
mac_events = Table(
    "mac_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("mac", BigInteger, nullable=False),
    Column("action", String(16), nullable=False),  # allocate | release | import | revive | expire
    Column("pool", String(64), nullable=True),
    Column("domain", String(255), nullable=True),
    Column("host", String(255), nullable=True),
    Index("ix_mac_events_mac", "mac"),
)
