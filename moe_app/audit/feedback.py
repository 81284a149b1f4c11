"""Clinician feedback on a prediction: a row linked to the prediction event, and a chained event."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moe_app.audit import queries
from moe_app.audit.chain import canonical_json
from moe_app.audit.events import Actor, NewEvent, StoredEvent, validate_event
from moe_app.audit.models import AuditEventRow, FeedbackRow
from moe_app.errors import AuditError
from moe_app.labels import LABELS

MAX_COMMENT = 200
_DIGITS_RE = re.compile(r"\d[\d/.\-: ]{2,}\d")  # dates, IDs, phone numbers in a comment


@dataclass(frozen=True)
class Feedback:
    """A clinician's verdict on one prediction event."""

    id: int
    prediction_event_id: int
    feedback_event: StoredEvent  # the chained feedback.recorded event
    actor: str
    agree: bool
    corrected_label: str | None
    comment: str
    time: datetime


def scrub_comment(comment: str) -> str:
    """Clip a feedback comment and blank out digit runs (dates, record numbers).

    Names cannot be detected reliably; the UI tells clinicians not to type identifiers.
    """
    return _DIGITS_RE.sub("#", " ".join(comment.split()))[:MAX_COMMENT]


def check_label(corrected_label: str | None) -> None:
    if corrected_label is not None and corrected_label not in LABELS:
        raise AuditError(f"Corrected diagnosis must be one of: {', '.join(LABELS)}.")


def add_feedback(
    session: Session,
    prediction_event_id: int,
    who: Actor,
    agree: bool,
    corrected_label: str | None,
    comment: str,
    source: tuple[str, str],
) -> Feedback:
    """Chain a feedback.recorded event and store the linked row. Caller holds the append lock.

    Raises:
        AuditError: the id is unknown or not a `prediction.made` event.
    """
    prediction = session.get(AuditEventRow, prediction_event_id)
    if prediction is None or prediction.action != "prediction.made":
        raise AuditError(
            f"Audit event {prediction_event_id} is not a recorded prediction; "
            "feedback can only be given on a prediction."
        )
    event = NewEvent(
        action="feedback.recorded",
        actor=who.name,
        actor_role=who.role,
        client_address=who.client_address,
        case_pseudonym=prediction.case_pseudonym,
        model_version=prediction.model_version,
        model_weights_sha256=prediction.model_weights_sha256,
        runtime=prediction.runtime,
        outcome_description="agrees" if agree else "disagrees",
        payload={
            "prediction_seq": prediction.seq,
            "prediction_hash": prediction.hash,
            "agree": agree,
            "corrected_label": corrected_label,
            "comment": comment,
        },
    )
    spec = validate_event(event)
    row = queries.append_in(session, event, spec, canonical_json(dict(event.payload)), source)
    fb = FeedbackRow(
        prediction_event_id=prediction.id,
        feedback_event_id=row["id"],
        time=row["time"],
        actor=who.name,
        agree=agree,
        corrected_label=corrected_label,
        comment=comment,
    )
    session.add(fb)
    session.flush()
    return _feedback(fb, queries.to_stored(row))


def feedback_for(session: Session, prediction_event_id: int) -> list[Feedback]:
    """All feedback on one prediction, oldest first."""
    pairs = session.execute(
        select(FeedbackRow, AuditEventRow)
        .join(AuditEventRow, AuditEventRow.id == FeedbackRow.feedback_event_id)
        .where(FeedbackRow.prediction_event_id == prediction_event_id)
        .order_by(FeedbackRow.id)
    ).all()
    return [_feedback(fb, queries.to_stored(ev)) for fb, ev in pairs]


def _feedback(fb: FeedbackRow, event: StoredEvent) -> Feedback:
    values: dict[str, Any] = {name: getattr(fb, name) for name in
                              ("id", "prediction_event_id", "actor", "agree", "corrected_label",
                               "comment", "time")}  # fmt: skip
    return Feedback(feedback_event=event, **values)
