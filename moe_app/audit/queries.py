"""Reading the chain: row conversion, filters and the append step, each taking a session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, or_, select
from sqlalchemy.orm import Session

from moe_app.audit.chain import GENESIS_HASH, HASHED_FIELDS, record_hash
from moe_app.audit.events import ActionSpec, NewEvent, StoredEvent
from moe_app.audit.models import AuditEventRow, utc_now

_COLUMNS = ("id", *HASHED_FIELDS, "hash")
_TABLE = AuditEventRow.__table__
_INSERT = insert(_TABLE).returning(_TABLE.c.id)
_HEAD = select(_TABLE.c.seq, _TABLE.c.hash).order_by(_TABLE.c.seq.desc()).limit(1)


@dataclass(frozen=True)
class EventFilter:
    """Filters of `AuditStore.list_events`; None means no filter."""

    action: str | None = None
    actor: str | None = None
    pseudonym: str | None = None
    since: datetime | None = None  # inclusive, tz-aware
    until: datetime | None = None  # exclusive, tz-aware
    text: str | None = None  # case-insensitive substring of action, actor, outcome, payload


def to_stored(row: AuditEventRow | dict[str, Any]) -> StoredEvent:
    """A row (ORM object or the mapping `append_in` returns) as a StoredEvent."""
    get = row.get if isinstance(row, dict) else row.__getattribute__
    values = {name: get(name) for name in _COLUMNS}
    values["payload"] = json.loads(values["payload"])
    return StoredEvent(**values)


def head(session: Session) -> tuple[int, str]:
    """(seq, hash) of the last record, or (0, GENESIS_HASH) for an empty chain."""
    last = session.connection().execute(_HEAD).first()
    return (0, GENESIS_HASH) if last is None else (last.seq, last.hash)


def append_in(
    session: Session,
    event: NewEvent,
    spec: ActionSpec,
    payload_json: str,
    source: tuple[str, str],
) -> dict[str, Any]:
    """Link one validated event to the head; returns the stored fields including `id`.

    The caller holds the append lock (db.lock_for_append).

    Args:
        source: (site, app version) of this app instance.
    """
    last_seq, prev_hash = head(session)
    fields: dict[str, Any] = {
        "seq": last_seq + 1,
        "time": utc_now(),
        "action": event.action,
        "type_code": spec.type.code,
        "subtype_code": spec.subtype.code if spec.subtype else None,
        "action_code": spec.action_code,
        "actor": event.actor,
        "actor_role": event.actor_role,
        "client_address": event.client_address,
        "outcome": event.outcome,
        "outcome_description": event.outcome_description,
        "case_pseudonym": event.case_pseudonym,
        "model_version": event.model_version,
        "model_weights_sha256": event.model_weights_sha256,
        "runtime": event.runtime,
        "source_site": source[0],
        "app_version": source[1],
        "payload": payload_json,
        "prev_hash": prev_hash,
    }
    fields["hash"] = record_hash(fields)
    # A Core INSERT: the ORM unit of work would double the cost of an append.
    fields["id"] = session.connection().execute(_INSERT, fields).scalar_one()
    return fields


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(flt: EventFilter) -> Select[tuple[AuditEventRow]]:
    """SELECT of events matching `flt`, newest first."""
    query = select(AuditEventRow)
    if flt.action:
        query = query.where(AuditEventRow.action == flt.action)
    if flt.actor:
        query = query.where(AuditEventRow.actor == flt.actor)
    if flt.pseudonym:
        query = query.where(AuditEventRow.case_pseudonym == flt.pseudonym)
    if flt.since:
        query = query.where(AuditEventRow.time >= flt.since)
    if flt.until:
        query = query.where(AuditEventRow.time < flt.until)
    if flt.text:
        pattern = f"%{_escape_like(flt.text)}%"
        query = query.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        AuditEventRow.action,
                        AuditEventRow.actor,
                        AuditEventRow.outcome_description,
                        AuditEventRow.case_pseudonym,
                        AuditEventRow.payload,
                    )
                )
            )
        )
    return query.order_by(AuditEventRow.seq.desc())


def iter_chain(session: Session, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every record as a plain mapping, in seq order, streamed in batches."""
    # Core columns and the session's connection: ORM row handling would double the cost.
    columns = [_TABLE.c[name] for name in _COLUMNS]
    query = select(*columns).order_by(_TABLE.c.seq).execution_options(yield_per=batch)
    result = session.connection().execute(query)
    for row in result:
        yield dict(zip(_COLUMNS, row, strict=True))


def iter_events(session: Session, batch: int = 2000) -> Iterator[StoredEvent]:
    """Every record as a StoredEvent, in seq order (for exports)."""
    for record in iter_chain(session, batch):
        record["payload"] = json.loads(record["payload"])
        yield StoredEvent(**record)
