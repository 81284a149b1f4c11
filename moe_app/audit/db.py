"""Engine, sessions, migrations and the append lock, for SQLite and PostgreSQL.

SQLite: WAL journal, `synchronous=NORMAL` (durable across app crashes; a power cut may lose
the last transactions but never corrupts the chain), foreign keys on, a busy timeout, and
`BEGIN IMMEDIATE` for writers so two appends can never read the same head.
PostgreSQL: a transaction-scoped advisory lock serialises appends across app instances.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from moe_app.errors import AuditError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
APPEND_LOCK_KEY = 0x6D6F6541  # "moeA": pg_advisory_xact_lock key for appends
MIGRATE_LOCK_KEY = 0x6D6F654D  # "moeM": for schema migrations
BUSY_TIMEOUT_MS = 10_000
_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
WRITE = {"moe_begin": "IMMEDIATE"}  # execution option: SQLite writers take the lock up front

T = TypeVar("T")


def normalise_url(url: str) -> URL:
    """Parse a database URL; plain `postgresql://` gets the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise AuditError(
            "MOE_APP_DATABASE_URL is not a database URL; use e.g. sqlite:////path/audit.db or "
            "postgresql+psycopg://user:password@host:5432/dbname."
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise AuditError("The audit store supports SQLite and PostgreSQL URLs only.")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise AuditError("The SQLite audit store needs a file path (an in-memory log is lost).")
    return parsed


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        f"busy_timeout={BUSY_TIMEOUT_MS}",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("moe_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_audit_engine(url: URL, schema: str | None = None) -> Engine:
    """One engine per process and URL; SQLite's parent directory is created if missing.

    Args:
        schema: PostgreSQL only: keep the audit tables in this schema (created if missing).
    """
    if url.get_backend_name() == "sqlite":
        if schema is not None:
            raise AuditError("A schema applies to PostgreSQL only; SQLite keeps one file.")
        assert url.database is not None
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if schema is None:
        return create_engine(url, pool_pre_ping=True)
    if not _SCHEMA_RE.match(schema):
        raise AuditError("The audit schema name must be letters, digits and underscores.")
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    finally:
        admin.dispose()
    options = {"options": f"-csearch_path={schema}"}
    return create_engine(url, pool_pre_ping=True, connect_args=options)


def lock_for_append(session: Session) -> None:
    """Serialise appends: first statement of every writing transaction."""
    conn = session.connection(execution_options=WRITE)
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})


def is_busy(exc: OperationalError) -> bool:
    message = str(exc.orig).lower()
    return "database is locked" in message or "database is busy" in message


def with_retries(work: Callable[[], T], attempts: int = 12) -> T:
    """Run a writing transaction again when SQLite reports the database as locked."""
    delay = 0.005
    for attempt in range(attempts):
        try:
            return work()
        except OperationalError as exc:
            if not is_busy(exc) or attempt == attempts - 1:
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)
    raise AssertionError("unreachable")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest alembic revision, under a lock so that several
    processes starting at once do not race to create the tables."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))

    def work() -> None:
        with engine.connect() as conn:
            conn.execution_options(**WRITE)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK_KEY}
                    )
                config.attributes["connection"] = conn
                command.upgrade(config, "head")

    with_retries(work)


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
