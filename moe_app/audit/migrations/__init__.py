"""Alembic migrations of the audit store, applied programmatically by `AuditStore.open`."""
