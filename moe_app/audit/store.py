"""AuditStore: the one object the pipeline, CLI and UI use to write and read the audit log."""

from __future__ import annotations

import contextlib
import hashlib
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import URL, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from moe_app import __version__
from moe_app.audit import db, feedback, queries
from moe_app.audit.chain import Checkpoint, VerifyResult, canonical_json, verify_records
from moe_app.audit.events import Actor, NewEvent, StoredEvent, validate_event
from moe_app.audit.export import Output, export_to
from moe_app.audit.feedback import Feedback
from moe_app.audit.models import AuditEventRow, utc_now
from moe_app.errors import AuditError

SYSTEM_ACTOR = Actor(name="moe-app", role="system")
MAX_LIMIT = 10_000  # events per list_events call
T = TypeVar("T")


class AuditStore:
    """Append-only, hash-chained audit log on SQLite or PostgreSQL.

    Create one per process with `AuditStore.open(url)` and share it between threads.
    """

    def __init__(self, engine: Engine, site: str) -> None:
        self.engine = engine  # one per process: tests and tools may listen to its events
        self._sessions = db.make_sessions(engine)
        self._source = (site, __version__)

    @classmethod
    def open(cls, url: str, *, site: str | None = None, schema: str | None = None) -> AuditStore:
        """Connect, apply migrations and return the store.

        Args:
            url: SQLAlchemy URL, e.g. `sqlite:////var/lib/moe-app/audit.db` or
                `postgresql+psycopg://user:pw@host:5432/db`.
            site: source site written on every event (default: this host's name).
            schema: PostgreSQL only: the schema holding the audit tables (created if missing);
                default the role's search_path.

        Raises:
            AuditError: bad URL, unreachable server, or a schema that cannot be migrated.
        """
        parsed = db.normalise_url(url)
        try:
            engine = db.create_audit_engine(parsed, schema)
        except SQLAlchemyError as exc:
            raise _open_error(parsed, exc) from None
        try:
            db.migrate(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise _open_error(parsed, exc) from None
        return cls(engine, site or socket.gethostname())

    def close(self) -> None:
        """Close the store's database connections."""
        self.engine.dispose()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def _write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one serialised writing transaction, retried while SQLite is busy."""

        def attempt() -> T:
            with self._sessions.begin() as session:
                db.lock_for_append(session)
                return work(session)

        try:
            return db.with_retries(attempt)
        except SQLAlchemyError as exc:
            cause = type(getattr(exc, "orig", None) or exc).__name__
            raise AuditError(
                f"The audit store could not be written ({cause}); the action was not "
                "recorded. Check the database server and disk."
            ) from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Session]:
        """A read session whose database errors become an AuditError an operator can act on."""
        try:
            with self._sessions() as session:
                yield session
        except SQLAlchemyError as exc:
            cause = type(getattr(exc, "orig", None) or exc).__name__
            raise AuditError(
                f"The audit store could not be read ({cause}). Check the database server and disk."
            ) from None

    def append(self, event: NewEvent) -> StoredEvent:
        """Validate, hash and store one event as the new head of the chain.

        Raises:
            AuditError: the event is malformed or could carry PHI, or the write failed.
        """
        spec = validate_event(event)
        payload = canonical_json(dict(event.payload))
        return self._write(
            lambda s: queries.to_stored(queries.append_in(s, event, spec, payload, self._source))
        )

    def record_prediction(
        self,
        actor: Actor,
        *,
        case_pseudonym: str,
        model_version: str,
        model_weights_sha256: str,
        runtime: str,
        probabilities: Mapping[str, float],
        gate_weights: Mapping[str, float],
        selected_experts: Sequence[str],
        contributions: Mapping[str, float],
        input_hashes: Mapping[str, str],
        extra: Mapping[str, Any] | None = None,
    ) -> StoredEvent:
        """Record one prediction (`prediction.made`) with everything needed to explain it later.

        Args:
            probabilities: label -> probability.
            gate_weights: expert/modality -> gate weight.
            contributions: expert/modality -> contribution to the top label.
            input_hashes: input name -> sha256 of its content (never the content).
            extra: further PHI-free fields (e.g. timings), merged into the payload.
        """
        top = max(probabilities, key=lambda k: probabilities[k]) if probabilities else None
        payload = {
            "prediction": {"label": top, "probabilities": dict(probabilities)},
            "gate_weights": dict(gate_weights),
            "selected_experts": list(selected_experts),
            "contributions": dict(contributions),
            "input_hashes": dict(input_hashes),
            **(extra or {}),
        }
        return self.append(
            NewEvent(
                action="prediction.made",
                actor=actor.name,
                actor_role=actor.role,
                client_address=actor.client_address,
                case_pseudonym=case_pseudonym,
                model_version=model_version,
                model_weights_sha256=model_weights_sha256,
                runtime=runtime,
                outcome_description=f"predicted {top}",
                payload=payload,
            )
        )

    def record_feedback(
        self,
        prediction_event_id: int,
        actor: Actor | str,
        agree: bool,
        corrected_label: str | None = None,
        comment: str = "",
    ) -> Feedback:
        """Store a clinician's verdict, linked to the prediction event (FK) and chained.

        Raises:
            AuditError: unknown event id, not a prediction, or a label outside LABELS.
        """
        feedback.check_label(corrected_label)
        who, text = _actor(actor), feedback.scrub_comment(comment)
        return self._write(
            lambda s: feedback.add_feedback(
                s, prediction_event_id, who, agree, corrected_label, text, self._source
            )
        )

    # -- reading (audited) -----------------------------------------------------------------

    def _audit_read(self, action: str, actor: Actor, outcome: int, desc: str, **info: Any) -> None:
        self.append(
            NewEvent(
                action=action,
                actor=actor.name,
                actor_role=actor.role,
                client_address=actor.client_address,
                outcome=outcome,
                outcome_description=desc,
                payload=info,
            )
        )

    def list_events(
        self,
        viewer: Actor | str,
        filters: queries.EventFilter | None = None,
        *,
        action: str | None = None,
        actor: str | None = None,
        pseudonym: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredEvent]:
        """Events matching the filters, newest first; the viewing is recorded (`audit.viewed`).

        Args:
            viewer: who looks (an Actor, or a user name).
            filters: an EventFilter; or give the same filters as keywords (None = any).
            since: inclusive, tz-aware; until: exclusive, tz-aware.
            text: case-insensitive substring of action, user, outcome, pseudonym or payload;
                recorded in the audit as a hash only, since a person typed it.
        """
        if not (1 <= limit <= MAX_LIMIT and offset >= 0):
            raise AuditError(f"Show between 1 and {MAX_LIMIT} events at a time, from offset 0 on.")
        flt = filters or queries.EventFilter(action, actor, pseudonym, since, until, text)
        with self._reading() as session:
            rows = session.scalars(queries.filtered(flt).limit(limit).offset(offset)).all()
            events = [queries.to_stored(r) for r in rows]
        shown = {k: v for k, v in vars(flt).items() if v is not None and k != "text"}
        shown = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in shown.items()}
        if flt.text:  # typed by a person: could be anything, so keep only its hash
            shown["text_sha256"] = _sha256(flt.text)
        self._audit_read("audit.viewed", _actor(viewer), 0, f"listed {len(events)} events",
                         filters=shown, limit=limit, offset=offset, shown=len(events))  # fmt: skip
        return events

    def get_event(self, event_id: int, viewer: Actor | str) -> StoredEvent:
        """One event by id (audited as `audit.viewed`).

        Raises:
            AuditError: no such event.
        """
        with self._reading() as session:
            row = session.get(AuditEventRow, event_id)
            if row is None:
                raise AuditError(f"There is no audit event {event_id}.")
            stored = queries.to_stored(row)
        self._audit_read(
            "audit.viewed", _actor(viewer), 0, "viewed one event", event_seq=stored.seq
        )
        return stored

    def feedback_for(self, prediction_event_id: int) -> list[Feedback]:
        """All feedback given on one prediction, oldest first."""
        with self._reading() as session:
            return feedback.feedback_for(session, prediction_event_id)

    def verify(
        self, checkpoint: Checkpoint | None = None, *, actor: Actor | str = SYSTEM_ACTOR
    ) -> VerifyResult:
        """Recompute the whole chain (and compare with `checkpoint`); audited as `audit.verified`."""
        result = self._verify(checkpoint)
        self._audit_read(
            "audit.verified", _actor(actor), 0 if result.ok else 8, result.reason or "chain verifies",
            count=result.count, head_hash=result.head_hash, first_bad_seq=result.first_bad_seq,
            checkpoint_count=checkpoint.count if checkpoint else None,
        )  # fmt: skip
        return result

    def _verify(self, checkpoint: Checkpoint | None) -> VerifyResult:
        with self._reading() as session:
            return verify_records(queries.iter_chain(session), checkpoint)

    def checkpoint(self, *, actor: Actor | str = SYSTEM_ACTOR) -> Checkpoint:
        """Verify the chain and return its count and head hash for safekeeping outside the DB.

        Raises:
            AuditError: the chain does not verify (a checkpoint would bless tampering).
        """
        result = self._verify(None)
        if not result.ok:
            raise AuditError(
                f"The audit chain does not verify ({result.reason}); no checkpoint was written."
            )
        cp = Checkpoint(count=result.count, head_hash=result.head_hash, time=utc_now())
        self._audit_read("audit.checkpointed", _actor(actor), 0, "checkpoint taken",
                         count=cp.count, head_hash=cp.head_hash)  # fmt: skip
        return cp

    def count(self) -> int:
        """Number of records in the chain (unaudited: a number, not log content)."""
        with self._reading() as session:
            return queries.head(session)[0]

    def export_fhir(self, out: Output, *, actor: Actor | str = SYSTEM_ACTOR) -> int:
        """Write every event as a FHIR R4 Bundle of AuditEvents; returns the count (audited)."""
        return export_to(self, "fhir", out, _actor(actor))

    def export_csv(self, out: Output, *, actor: Actor | str = SYSTEM_ACTOR) -> int:
        """Write every event as CSV with a header row; returns the count (audited)."""
        return export_to(self, "csv", out, _actor(actor))

    def read_session(self) -> contextlib.AbstractContextManager[Session]:
        """A read session for exports (one consistent snapshot while it is open)."""
        return self._reading()


def _actor(who: Actor | str) -> Actor:
    """A bare user name becomes an Actor with the default role and no address."""
    return Actor(who) if isinstance(who, str) else who


def _open_error(url: URL, exc: SQLAlchemyError) -> AuditError:
    where = url.render_as_string(hide_password=True)
    cause = type(getattr(exc, "orig", None) or exc).__name__
    return AuditError(
        f"Cannot open the audit store at {where} ({cause}). Check MOE_APP_DATABASE_URL, that "
        "the database server runs, and that the user may create tables there."
    )


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


__all__ = ["SYSTEM_ACTOR", "AuditStore", "Feedback"]
