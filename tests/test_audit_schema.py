"""Migrations ship with the package and reach head; the documented tables match the code."""

from __future__ import annotations

import fnmatch
import tomllib
import uuid
from pathlib import Path

import sqlalchemy as sa

import moe_app.audit.events as events
from moe_app.audit import ACTIONS, AuditStore, NewEvent
from moe_app.audit.db import MIGRATIONS_DIR
from moe_app.audit.export import CSV_COLUMNS
from moe_app.audit.models import AuditEventRow
from tests.conftest_audit import audit_url

__all__ = ["audit_url"]  # fixture used by name
REPO = Path(__file__).resolve().parent.parent


def test_every_migration_file_is_package_data() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["moe_app"]
    package = REPO / "moe_app"
    files = [p for p in MIGRATIONS_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert any(p.parent.name == "versions" for p in files)
    for path in files:
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pat) for pat in patterns), relative


def test_open_migrates_to_head(audit_url: str) -> None:
    with AuditStore.open(audit_url) as store, store.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            == "0001_initial"
        )
        columns = {c["name"] for c in sa.inspect(conn).get_columns("audit_events")}
    assert columns == set(AuditEventRow.__table__.columns.keys())


def test_sqlite_pragmas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'a.db'}"
    with AuditStore.open(url) as store, store.engine.connect() as conn:
        pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")}  # fmt: skip
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 10_000,
        "synchronous": 1,
    }


def test_action_table_is_documented() -> None:
    doc = events.__doc__ or ""
    for action, spec in ACTIONS.items():
        row = next(line for line in doc.splitlines() if line.startswith(f"| {action} |"))
        assert spec.type.code in row and f"| {spec.action_code} |" in row
        assert spec.subtype is None or spec.subtype.code in row


def test_csv_columns_cover_the_stored_record() -> None:
    assert set(CSV_COLUMNS) == set(AuditEventRow.__table__.columns.keys()) - {"id"}


def test_postgres_schema_option(audit_url: str) -> None:
    if audit_url.startswith("sqlite"):
        import pytest

        from moe_app.errors import AuditError

        with pytest.raises(AuditError, match="PostgreSQL only"):
            AuditStore.open(audit_url, schema="audit")
        return
    schema = f"audit_{uuid.uuid4().hex[:8]}"
    with AuditStore.open(audit_url, schema=schema) as store:
        try:
            store.append(NewEvent(action="app.started", actor="moe-app"))
            with store.engine.connect() as conn:
                where = conn.execute(sa.text("SELECT table_schema FROM information_schema.tables "
                                             "WHERE table_name = 'audit_events'")).scalars().all()  # fmt: skip
        finally:
            with store.engine.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    assert schema in where
