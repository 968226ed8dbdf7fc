"""The fleet's hosts, the history of every host's vifs and the addresses seen on them
(``vifscope fleet sync``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_hosts",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("host_id", sa.String(255), nullable=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("attempted_at", sa.Float, nullable=False),
        sa.Column("synced_at", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("vifs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("findings_error", sa.Integer, nullable=False, server_default="0"),
        sa.Column("findings_warning", sa.Integer, nullable=False, server_default="0"),
        sa.Column("findings_info", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "fleet_vifs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("domain_uuid", sa.String(64), nullable=False),
        sa.Column("vif_index", sa.Integer, nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("mac", sa.String(17), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("source", sa.String(255), nullable=True),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
        sa.Column("valid_from", sa.Float, nullable=False),
        sa.Column("valid_to", sa.Float, nullable=True),
    )
    # At most one open interval per vif: the guarantee that two hubs syncing at once cannot
    # both open one (the second's insert fails and its transaction is retried).
    op.create_index(
        "ux_fleet_vifs_open",
        "fleet_vifs",
        ["host", "domain_uuid", "vif_index"],
        unique=True,
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_index("ix_fleet_vifs_mac", "fleet_vifs", ["mac", "status"])
    op.create_table(
        "fleet_addresses",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("domain_uuid", sa.String(64), primary_key=True),
        sa.Column("vif_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("mac", sa.String(17), nullable=True),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )
    op.create_index("ix_fleet_addresses_address", "fleet_addresses", ["address"])


def downgrade() -> None:
    op.drop_table("fleet_addresses")
    op.drop_table("fleet_vifs")
    op.drop_table("fleet_hosts")
