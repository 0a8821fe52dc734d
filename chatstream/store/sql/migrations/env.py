"""Alembic environment of chatstream's tables (`chatstream_*`, version table `chatstream_alembic_version`).

Run through `chatstream.store.sql.migrate` (`chatstream db upgrade`, or at start-up with
`CHAT_DB_AUTO_MIGRATE`), which opens the connection, takes the migration lock and hands the connection over
in `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context

from chatstream.store.sql.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("chatstream's migrations run through `chatstream db upgrade` (chatstream.store.sql.migrate)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite alters a table by copying it (ALTER TABLE covers little there).
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
