"""The fleet's inventory as a table (``vifscope fleet hosts add|remove|list``): what the
YAML file's ``hosts:`` list holds, one row per host. And ``fleet_hosts.answer_tag``: the
agent's ETags of the answer a host's rows were last written from (``fleet sync --daemon``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_inventory",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("token_file", sa.Text, nullable=True),
        sa.Column("ca_file", sa.Text, nullable=True),
        sa.Column("labels", sa.Text, nullable=False, server_default="{}"),
        sa.Column("added_at", sa.Float, nullable=False),
    )
    op.add_column("fleet_hosts", sa.Column("answer_tag", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fleet_hosts") as batch:  # SQLite: copy and move (no DROP COLUMN before 3.35)
        batch.drop_column("answer_tag")
    op.drop_table("fleet_inventory")
