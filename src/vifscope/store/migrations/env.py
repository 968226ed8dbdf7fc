"""Alembic's environment, run by ``vifscope.store.engine.migrate`` only: the connection is
handed in through ``config.attributes`` (no URL in an ini file, no logging set-up)."""

from __future__ import annotations

from alembic import context

from vifscope.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
