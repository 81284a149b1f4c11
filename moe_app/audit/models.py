"""SQLAlchemy 2.0 typed models of the audit store: the event chain and clinician feedback.

The schema itself is created by the alembic migrations in `migrations/versions`, which also
install the triggers that refuse UPDATE and DELETE; these models describe it for queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime that is always UTC and tz-aware in Python, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite stores text; without the offset the text sorts and compares correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class AuditEventRow(Base):
    """One link of the chain. Append-only: triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)  # 1-based chain position
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    type_code: Mapped[str] = mapped_column(String(16))  # DCM code, see events.ACTIONS
    subtype_code: Mapped[str | None] = mapped_column(String(16))
    action_code: Mapped[str] = mapped_column(String(1))  # C/R/U/D/E
    actor: Mapped[str] = mapped_column(String(128), index=True)
    actor_role: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[int] = mapped_column(Integer)  # 0/4/8/12
    outcome_description: Mapped[str] = mapped_column(Text)
    case_pseudonym: Mapped[str | None] = mapped_column(String(128), index=True)
    model_version: Mapped[str | None] = mapped_column(String(64))
    model_weights_sha256: Mapped[str | None] = mapped_column(String(64))
    runtime: Mapped[str | None] = mapped_column(String(64))
    source_site: Mapped[str] = mapped_column(String(128))
    app_version: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON text, hashed as is
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class FeedbackRow(Base):
    """A clinician's verdict on one prediction; also recorded as a chained event."""

    __tablename__ = "audit_feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prediction_event_id: Mapped[int] = mapped_column(
        ForeignKey("audit_events.id", ondelete="RESTRICT"), index=True
    )
    feedback_event_id: Mapped[int] = mapped_column(
        ForeignKey("audit_events.id", ondelete="RESTRICT"), unique=True
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    actor: Mapped[str] = mapped_column(String(128))
    agree: Mapped[bool]
    corrected_label: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")
