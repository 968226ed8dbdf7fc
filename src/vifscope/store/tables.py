"""The schema, as SQLAlchemy Core tables. Alembic's migrations create it; this is what the
queries are written against (tests check the two agree).

MACs are kept as 48-bit integers (BIGINT) so a pool's range is a ``BETWEEN`` over the
primary-key index. ``mac_addresses.mac`` being the primary key is the allocation guarantee:
two transactions can never both hold a row for the same MAC.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text, text

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

# ``vifscope fleet sync``: each host as last asked, one row per state interval of each vif
# (valid_to NULL: the current one), and every guest address seen on a vif.
fleet_hosts = Table(
    "fleet_hosts",
    metadata,
    Column("name", String(255), primary_key=True),  # the inventory's name
    Column("host_id", String(255), nullable=True),
    Column("version", String(64), nullable=True),
    Column("status", String(16), nullable=True),  # the agent's: ok | degraded
    Column("attempted_at", Float, nullable=False),
    Column("synced_at", Float, nullable=True),  # the last sync that got its vifs
    Column("error", Text, nullable=True),  # why the last attempt got nothing (None: it did)
    Column("vifs", Integer, nullable=False, server_default="0"),
    Column("findings_error", Integer, nullable=False, server_default="0"),
    Column("findings_warning", Integer, nullable=False, server_default="0"),
    Column("findings_info", Integer, nullable=False, server_default="0"),
    # the agent's ETags of the answer the host's rows were written from (None: not tagged);
    # a sync whose every question got a 304 for exactly these touches the row and writes nothing
    Column("answer_tag", Text, nullable=True),
)

fleet_vifs = Table(
    "fleet_vifs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("host", String(255), nullable=False),
    Column("domain_uuid", String(64), nullable=False),
    Column("vif_index", Integer, nullable=False),
    Column("domain", String(255), nullable=False),
    Column("mac", String(17), nullable=True),
    Column("type", String(32), nullable=False),
    Column("source", String(255), nullable=True),
    Column("target", String(255), nullable=True),
    Column("status", String(16), nullable=False),
    Column("problems", Text, nullable=False),  # space-separated, sorted
    Column("valid_from", Float, nullable=False),
    Column("valid_to", Float, nullable=True),
    Index(
        "ux_fleet_vifs_open",
        "host",
        "domain_uuid",
        "vif_index",
        unique=True,
        sqlite_where=text("valid_to IS NULL"),
        postgresql_where=text("valid_to IS NULL"),
    ),
    Index("ix_fleet_vifs_mac", "mac", "status"),
)

fleet_addresses = Table(
    "fleet_addresses",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("domain_uuid", String(64), primary_key=True),
    Column("vif_index", Integer, primary_key=True, autoincrement=False),
    Column("address", String(64), primary_key=True),
    Column("mac", String(17), nullable=True),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Index("ix_fleet_addresses_address", "address"),
)

# The fleet's inventory, when it is kept here rather than in a YAML file: one row per host,
# its entry's keys as columns; ``labels`` is a JSON object of text values.
fleet_inventory = Table(
    "fleet_inventory",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("url", Text, nullable=False),
    Column("token_file", Text, nullable=True),
    Column("ca_file", Text, nullable=True),
    Column("labels", Text, nullable=False, server_default="{}"),
    Column("added_at", Float, nullable=False),
)
