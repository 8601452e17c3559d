"""Alembic environment: migrations run on a connection handed over by `aiotrade.store.db.migrate`."""

from __future__ import annotations

from alembic import context

from aiotrade.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `python -m aiotrade migrate` (aiotrade.store.db.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copy
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
