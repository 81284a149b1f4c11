"""Alembic environment: runs on the connection that `moe_app.audit.db.migrate` hands over.

The caller has already begun a transaction and taken the migration lock on that connection,
so alembic runs inside it and the caller commits.
"""

from __future__ import annotations

from alembic import context

from moe_app.audit.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the alembic CLI
    raise RuntimeError("Run migrations through moe_app.audit (AuditStore.open), not the CLI.")

context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
