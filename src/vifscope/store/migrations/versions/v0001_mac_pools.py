"""MAC pools, taken MACs and their events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mac_pools",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("first_mac", sa.BigInteger, nullable=False),
        sa.Column("last_mac", sa.BigInteger, nullable=False),
        sa.Column("quarantine_s", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "mac_addresses",
        sa.Column("mac", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pool", sa.String(64), nullable=True),
        sa.Column("domain", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("changed_at", sa.Float, nullable=False),
        sa.Column("reusable_at", sa.Float, nullable=True),
    )
    op.create_index("ix_mac_addresses_reusable_at", "mac_addresses", ["reusable_at"])
    op.create_table(
        "mac_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("mac", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("pool", sa.String(64), nullable=True),
        sa.Column("domain", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
    )
    op.create_index("ix_mac_events_mac", "mac_events", ["mac"])


def downgrade() -> None:
    op.drop_table("mac_events")
    op.drop_table("mac_addresses")
    op.drop_table("mac_pools")
