"""Tamper-evident audit store: who ran which case through which model, what it answered,
what the clinician decided, and proof that nobody changed it afterwards.

Usage (one store per process, shared by threads)::

    from moe_app.audit import Actor, AuditStore, NewEvent, EventFilter
    store = AuditStore.open(load_config().database_url)       # migrates to the newest schema
    user = Actor("dr.smith", role="clinician", client_address="10.0.0.7")
    store.append(NewEvent(action="case.submitted", actor=user.name, case_pseudonym=p))
    ev = store.record_prediction(user, case_pseudonym=p, model_version="1.0",
                                 model_weights_sha256=sha, runtime="onnxruntime-cpu",
                                 probabilities={...}, gate_weights={...},
                                 selected_experts=[...], contributions={...},
                                 input_hashes={...})
    store.record_feedback(ev.id, user, agree=False, corrected_label="pneumonia", comment="")
    store.list_events(user, EventFilter(pseudonym=p), limit=50)   # audited: audit.viewed
    store.get_event(ev.id, user)                                  # audited: audit.viewed
    store.verify(Checkpoint.load("cp.json"), actor=user)          # audited: audit.verified
    store.checkpoint(actor=user).save("cp.json")                  # audited: audit.checkpointed
    store.export_fhir("audit.json", actor=user)                   # audited: audit.exported
    store.export_csv("audit.csv", actor=user)                     # audited: audit.exported

Public API:
- `AuditStore.open(url, site=None) -> AuditStore`; `close()`; context manager.
- `append(NewEvent) -> StoredEvent`: the store adds UTC time, seq, prev_hash and hash.
- `record_prediction(actor, *, case_pseudonym, model_version, model_weights_sha256, runtime,
  probabilities, gate_weights, selected_experts, contributions, input_hashes, extra=None)`.
- `record_feedback(prediction_event_id, actor, agree, corrected_label=None, comment="")
  -> Feedback`; `feedback_for(prediction_event_id) -> list[Feedback]`.
- `list_events(viewer, EventFilter(action, actor, pseudonym, since, until, text), *, limit,
  offset) -> list[StoredEvent]` (newest first); `get_event(id, viewer) -> StoredEvent`.
- `verify(checkpoint=None, *, actor) -> VerifyResult(ok, count, head_hash, first_bad_seq,
  reason)`; `checkpoint(*, actor) -> Checkpoint(count, head_hash, time)` with
  `Checkpoint.save(path)` / `Checkpoint.load(path)`; `count() -> int`.
- `export_fhir(path_or_stream, *, actor) -> int`, `export_csv(path_or_stream, *, actor) -> int`.

Command line (store from MOE_APP_DATABASE_URL; each command is itself audited):
- `moe-app audit verify [--checkpoint FILE]`: exit 0 when the chain verifies, 1 naming the
  first bad record, 2 when the store or checkpoint cannot be read.
- `moe-app audit export --format fhir|csv --out FILE`: FHIR R4 Bundle of AuditEvents, or CSV.
- `moe-app audit checkpoint [--out FILE]`: count and head hash, to keep outside the database.
- `moe-app audit list [--action --actor --pseudonym --since --until --text --limit --offset]`.

Operators point the app at PostgreSQL with e.g.
`MOE_APP_DATABASE_URL=postgresql+psycopg://moe:PASSWORD@dbhost:5432/moe` (plain
`postgresql://` gets the psycopg 3 driver); the role needs CREATE on the database (tables,
a trigger function) on first start, as migrations run automatically.

Actions and their DICOM/FHIR codes: see `moe_app.audit.events` (the table in its docstring).
No PHI: events carry pseudonyms, hashes, numbers and codes only; `validate_event` rejects
payload keys such as `report_text`, `pixels`, `patient_name`, strings over 200 characters,
lists over 256 items and raw bytes. Feedback comments are clipped and digit runs blanked.

Guarantees: appends are serialised (SQLite `BEGIN IMMEDIATE` with retries; PostgreSQL
`pg_advisory_xact_lock`), so concurrent threads and processes never fork or lose the chain;
database triggers refuse UPDATE/DELETE (and TRUNCATE on PostgreSQL); `verify` names the first
record that was edited, deleted, inserted or reordered; a checkpoint kept outside the database
also reveals truncation and wholesale rewriting. Every failure raises `AuditError`.
Limitation: the hash has no secret key, so someone who can write to the database can append
forged records at the tail; a checkpoint only proves the history up to its own head.
"""

from __future__ import annotations

from moe_app.audit.chain import GENESIS_HASH, Checkpoint, VerifyResult
from moe_app.audit.events import ACTIONS, OUTCOMES, Actor, NewEvent, StoredEvent
from moe_app.audit.queries import EventFilter
from moe_app.audit.store import SYSTEM_ACTOR, AuditStore, Feedback

__all__ = [
    "ACTIONS",
    "GENESIS_HASH",
    "OUTCOMES",
    "SYSTEM_ACTOR",
    "Actor",
    "AuditStore",
    "Checkpoint",
    "EventFilter",
    "Feedback",
    "NewEvent",
    "StoredEvent",
    "VerifyResult",
]
