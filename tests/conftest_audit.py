"""Fixtures of the audit tests: a fresh audit database per test, on SQLite and PostgreSQL.

PostgreSQL runs when MOE_APP_TEST_POSTGRES_URL is set (each test gets its own schema, dropped
afterwards; the role needs CREATE on the database). With MOE_APP_REQUIRE_ALL_TESTS=1 a missing
URL or an unreachable server fails the PostgreSQL tests instead of skipping them.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from moe_app.audit import Actor, AuditStore, NewEvent

PG_ENV = "MOE_APP_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))
CLINICIAN = Actor("dr.test", role="clinician", client_address="10.1.2.3")


def _require_all() -> bool:
    return os.environ.get("MOE_APP_REQUIRE_ALL_TESTS") == "1"


def _unavailable(reason: str) -> None:
    if _require_all():
        pytest.fail(f"PostgreSQL audit tests cannot run: {reason} (MOE_APP_REQUIRE_ALL_TESTS=1)")
    pytest.skip(reason)


def postgres_schema_url() -> Iterator[str]:
    """A URL whose search_path is a brand-new schema; the schema is dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        _unavailable(f"{PG_ENV} is not set")
    assert base is not None
    admin = sa.create_engine(base, connect_args={"connect_timeout": 5})
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unavailable(f"PostgreSQL at {PG_ENV} is unreachable ({type(exc.orig).__name__})")
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def audit_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of an empty audit database (SQLite file, or a fresh PostgreSQL schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('audit') / 'sub' / 'audit.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def fresh_store(audit_url: str) -> Iterator[AuditStore]:
    """An opened, migrated, empty AuditStore."""
    store = AuditStore.open(audit_url, site="test-site")
    yield store
    store.close()


def submitted(i: int = 0) -> NewEvent:
    return NewEvent(
        action="case.submitted", actor="dr.test", case_pseudonym=f"P-{i:04d}", payload={"i": i}
    )


def fill(store: AuditStore, n: int) -> None:
    for i in range(n):
        store.append(submitted(i))


def drop_triggers(store: AuditStore) -> None:
    """What an attacker with DDL rights does first."""
    with store.engine.begin() as conn:
        for table in ("audit_events", "audit_feedback"):
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"DROP TRIGGER {table}_no_change ON {table}")
            else:
                conn.exec_driver_sql(f"DROP TRIGGER {table}_no_update")
                conn.exec_driver_sql(f"DROP TRIGGER {table}_no_delete")


def raw(store: AuditStore, sql: str, params: dict | None = None) -> None:
    """Run SQL behind the app's back (no validation, no chain)."""
    with store.engine.begin() as conn:
        conn.execute(sa.text(sql), params or {})


def append_worker(url: str, worker: int, n: int, barrier_dir: str, parties: int) -> int:
    """Run in a child process: open the store, wait until all children are ready, append n."""
    with AuditStore.open(url, site=f"proc-{worker}") as store:
        ready = Path(barrier_dir)
        (ready / f"ready-{worker}").touch()
        deadline = time.monotonic() + 120
        while len(list(ready.glob("ready-*"))) < parties and time.monotonic() < deadline:
            time.sleep(0.01)
        for i in range(n):
            store.append(
                NewEvent(action="case.submitted", actor=f"w{worker}", payload={"w": worker, "i": i})
            )
    return n


def crash_worker(url: str) -> None:
    """Run in a child process: die (os._exit) right after the INSERT, before the COMMIT."""
    with AuditStore.open(url) as store:

        def die(conn, cursor, statement, *args) -> None:  # noqa: ANN001
            if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS"):
                os._exit(3)

        sa.event.listen(store.engine, "after_cursor_execute", die)
        store.append(submitted(99))
