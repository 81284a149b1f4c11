"""AuditStore on SQLite and PostgreSQL: appends, feedback, queries, triggers, tampering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from moe_app.audit import ACTIONS, GENESIS_HASH, AuditStore, Checkpoint, EventFilter, NewEvent
from moe_app.audit.chain import record_hash
from moe_app.errors import AuditError
from tests.conftest_audit import (
    CLINICIAN,
    audit_url,
    drop_triggers,
    fill,
    fresh_store,
    raw,
    submitted,
)

__all__ = ["audit_url", "fresh_store"]  # fixtures used by name
SHA = "ab" * 32


def predict(store: AuditStore, pseudonym: str = "P-0001"):  # noqa: ANN201
    return store.record_prediction(
        CLINICIAN, case_pseudonym=pseudonym, model_version="1.2.0", model_weights_sha256=SHA,
        runtime="onnxruntime-cpu", probabilities={"normal": 0.1, "pneumonia": 0.9},
        gate_weights={"image": 0.7, "report": 0.2, "vitals": 0.1}, selected_experts=["image"],
        contributions={"image": 0.6, "report": 0.2}, input_hashes={"image": "cd" * 32},
    )  # fmt: skip


def test_append_links_each_event_to_the_previous(fresh_store: AuditStore) -> None:
    first = fresh_store.append(submitted(1))
    second = fresh_store.append(submitted(2))
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    assert first.time.tzinfo is not None and second.time >= first.time
    assert (first.type_code, first.action_code, first.source_site) == ("110107", "C", "test-site")
    assert fresh_store.count() == 2


def test_record_prediction_keeps_what_explains_it(fresh_store: AuditStore) -> None:
    event = predict(fresh_store)
    assert event.action == "prediction.made" and event.model_weights_sha256 == SHA
    assert event.payload["prediction"]["label"] == "pneumonia"
    assert event.payload["gate_weights"]["image"] == pytest.approx(0.7)
    assert fresh_store.get_event(event.id, CLINICIAN) == event


@pytest.mark.parametrize(
    "bad",
    [
        NewEvent(action="case.deleted", actor="dr"),
        NewEvent(action="case.submitted", actor=""),
        NewEvent(action="case.submitted", actor="dr", outcome=3),
        NewEvent(action="case.submitted", actor="dr", case_pseudonym="Doe^John 1970"),
        NewEvent(action="case.submitted", actor="dr", model_weights_sha256="xyz"),
        NewEvent(action="case.submitted", actor="dr", payload={"report_text": "x"}),
        NewEvent(action="case.submitted", actor="dr", payload={"a": {"PatientName": "x"}}),
        NewEvent(action="case.submitted", actor="dr", payload={"pixels": [0.1]}),
        NewEvent(action="case.submitted", actor="dr", payload={"note": "word " * 60}),
        NewEvent(action="case.submitted", actor="dr", payload={"row": list(range(300))}),
        NewEvent(action="case.submitted", actor="dr", payload={"blob": b"\x00"}),
        NewEvent(action="case.submitted", actor="dr", payload={"x": float("nan")}),
    ],
)
def test_append_refuses_malformed_or_phi_bearing_events(fresh_store: AuditStore, bad) -> None:  # noqa: ANN001
    with pytest.raises(AuditError):
        fresh_store.append(bad)
    assert fresh_store.count() == 0


def test_every_action_has_dicom_codes() -> None:
    for spec in ACTIONS.values():
        assert spec.type.code.startswith("110") and spec.action_code in "CRUDE"


def test_feedback_is_linked_to_its_prediction_and_chained(fresh_store: AuditStore) -> None:
    first, second = predict(fresh_store, "P-0001"), predict(fresh_store, "P-0002")
    fb = fresh_store.record_feedback(second.id, CLINICIAN, agree=False,
                                     corrected_label="heart_failure", comment="seen 12/03/2024")  # fmt: skip
    assert fb.prediction_event_id == second.id
    assert fb.feedback_event.action == "feedback.recorded"
    assert fb.feedback_event.case_pseudonym == "P-0002"
    assert fb.feedback_event.payload["prediction_hash"] == second.hash
    assert "12/03/2024" not in fb.comment
    assert fresh_store.feedback_for(second.id) == [fb]
    assert fresh_store.feedback_for(first.id) == []
    assert fresh_store.verify().ok


@pytest.mark.parametrize("target", ["case_event", "unknown"])
def test_feedback_refused_on_non_prediction(fresh_store: AuditStore, target: str) -> None:
    case_event = fresh_store.append(submitted())
    event_id = case_event.id if target == "case_event" else 999_999
    with pytest.raises(AuditError, match="not a recorded prediction"):
        fresh_store.record_feedback(event_id, "dr.test", agree=True)
    assert fresh_store.count() == 1


def test_feedback_refuses_unknown_label(fresh_store: AuditStore) -> None:
    with pytest.raises(AuditError, match="Corrected diagnosis"):
        fresh_store.record_feedback(predict(fresh_store).id, "dr", False, "flu")


def test_list_events_filters_and_is_itself_audited(fresh_store: AuditStore) -> None:
    fill(fresh_store, 3)
    predict(fresh_store, "P-0777")
    assert [e.seq for e in fresh_store.list_events(CLINICIAN)] == [4, 3, 2, 1]
    assert fresh_store.list_events(CLINICIAN, limit=2, offset=1)[0].seq == 4  # newest first
    by_pseudonym = fresh_store.list_events(CLINICIAN, EventFilter(pseudonym="P-0777"))
    assert [e.action for e in by_pseudonym] == ["prediction.made"]
    assert len(fresh_store.list_events(CLINICIAN, EventFilter(text="PNEUMONIA"))) == 1
    assert fresh_store.list_events(CLINICIAN, EventFilter(text="100%_")) == []
    future = datetime.now(UTC) + timedelta(days=1)
    assert fresh_store.list_events(CLINICIAN, EventFilter(since=future)) == []
    assert (
        len(fresh_store.list_events(CLINICIAN, EventFilter(until=future, action="prediction.made")))
        == 1
    )
    viewed = fresh_store.list_events(CLINICIAN, EventFilter(action="audit.viewed"), limit=100)
    assert len(viewed) == 7 and viewed[0].actor == CLINICIAN.name
    searched = [e.payload["filters"] for e in viewed if "text_sha256" in e.payload["filters"]]
    assert len(searched) == 2  # typed search text is kept as a hash only
    assert "100%_" not in str(viewed) and "PNEUMONIA" not in str(viewed)


def test_get_unknown_event(fresh_store: AuditStore) -> None:
    with pytest.raises(AuditError, match="no audit event"):
        fresh_store.get_event(42, CLINICIAN)


@pytest.mark.parametrize("sql", ["UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"])
def test_database_refuses_update_and_delete(fresh_store: AuditStore, sql: str) -> None:
    fresh_store.record_feedback(predict(fresh_store).id, "dr", True)
    for statement in (sql, sql.replace("audit_events", "audit_feedback")):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            raw(fresh_store, statement)
    assert fresh_store.verify().ok


def _shift_and_forge(store: AuditStore) -> None:
    """Insert a well-formed forged record after record 3 and renumber the rest."""
    for seq in (5, 4):
        raw(store, "UPDATE audit_events SET seq = seq + 1 WHERE seq = :s", {"s": seq})
    forged = store.list_events(CLINICIAN, EventFilter(action="case.submitted"), limit=5)[-1]
    fields = {**vars(forged), "seq": 4, "actor": "mallory", "prev_hash": _hash_of(store, 3)}
    fields["payload"] = '{"i":0}'
    fields["hash"] = record_hash(fields)
    fields.pop("id")
    columns = ", ".join(fields)
    raw(
        store,
        f"INSERT INTO audit_events ({columns}) VALUES ({', '.join(':' + c for c in fields)})",
        fields,
    )


def _hash_of(store: AuditStore, seq: int) -> str:
    with store.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT hash FROM audit_events WHERE seq = :s"), {"s": seq}
        ).scalar_one()


TAMPERING = {
    "edit": (["UPDATE audit_events SET outcome_description = 'ok' WHERE seq = 3"], 3),
    "edit_time": (["UPDATE audit_events SET time = :t WHERE seq = 2"], 2),
    "delete": (["DELETE FROM audit_events WHERE seq = 3"], 3),
    "insert_tail": ([f"INSERT INTO audit_events (seq, time, action, type_code, action_code, actor, "
                     f"actor_role, outcome, outcome_description, source_site, app_version, payload, "
                     f"prev_hash, hash) SELECT 6, time, action, type_code, action_code, 'mallory', "
                     f"actor_role, 0, '', source_site, app_version, '{{}}', hash, '{'f' * 64}' "
                     f"FROM audit_events WHERE seq = 5"], 6),
    "reorder": (["UPDATE audit_events SET seq = -1 WHERE seq = 3",
                 "UPDATE audit_events SET seq = 3 WHERE seq = 4",
                 "UPDATE audit_events SET seq = 4 WHERE seq = -1"], 3),
}  # fmt: skip


@pytest.mark.parametrize("kind", [*TAMPERING, "insert_middle"])
def test_verify_names_first_tampered_record(fresh_store: AuditStore, kind: str) -> None:
    fill(fresh_store, 5)
    drop_triggers(fresh_store)
    if kind == "insert_middle":
        _shift_and_forge(fresh_store)
        expected = 5  # the forged record 4 hashes fine; the renumbered next one does not link
    else:
        statements, expected = TAMPERING[kind]
        for sql in statements:
            raw(fresh_store, sql, {"t": datetime(2020, 1, 1)} if ":t" in sql else None)
    result = fresh_store.verify()
    assert not result.ok and result.first_bad_seq == expected, result
    last = fresh_store.list_events(CLINICIAN, EventFilter(action="audit.verified"), limit=1)[0]
    assert last.outcome == 8 and last.payload["first_bad_seq"] == expected


def test_checkpoint_detects_truncation_and_rewrite(fresh_store: AuditStore, tmp_path) -> None:  # noqa: ANN001
    fill(fresh_store, 5)
    cp = fresh_store.checkpoint()
    cp.save(tmp_path / "cp.json")
    assert cp.count == 5 and cp.head_hash == _hash_of(fresh_store, 5)
    loaded = Checkpoint.load(tmp_path / "cp.json")
    assert fresh_store.verify(loaded).ok  # events after the checkpoint are fine
    drop_triggers(fresh_store)
    raw(fresh_store, "DELETE FROM audit_events WHERE seq >= 4")
    assert fresh_store.verify().ok  # invisible without the checkpoint...
    truncated = fresh_store.verify(loaded)
    assert not truncated.ok and "removed" in truncated.reason  # ...but not with it
    raw(fresh_store, "DELETE FROM audit_events")
    fill(fresh_store, 8)  # a superuser's consistent rewrite
    assert fresh_store.verify().ok
    rewritten = fresh_store.verify(loaded)
    assert not rewritten.ok and rewritten.first_bad_seq == 5 and "rewritten" in rewritten.reason


def test_checkpoint_refused_on_broken_chain(fresh_store: AuditStore) -> None:
    fill(fresh_store, 3)
    drop_triggers(fresh_store)
    raw(fresh_store, "UPDATE audit_events SET actor = 'x' WHERE seq = 2")
    with pytest.raises(AuditError, match="does not verify"):
        fresh_store.checkpoint()


def test_crash_between_insert_and_commit_leaves_valid_chain(fresh_store: AuditStore) -> None:
    fill(fresh_store, 3)

    def boom(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS"):
            raise RuntimeError("injected crash")

    sa.event.listen(fresh_store.engine, "after_cursor_execute", boom)
    with pytest.raises(RuntimeError, match="injected"):
        fresh_store.append(submitted(4))
    sa.event.remove(fresh_store.engine, "after_cursor_execute", boom)
    assert fresh_store.count() == 3
    assert fresh_store.append(submitted(5)).seq == 4
    assert fresh_store.verify().ok


def test_reopening_does_not_migrate_twice(audit_url: str) -> None:
    with AuditStore.open(audit_url) as store:
        fill(store, 2)
    with AuditStore.open(audit_url) as store:
        assert store.count() == 2 and store.verify().ok


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://u:p@h/db", "sqlite://", "sqlite:///:memory:",
            "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"],
)  # fmt: skip
def test_open_refuses_bad_urls_without_leaking_password(url: str) -> None:
    with pytest.raises(AuditError) as info:
        AuditStore.open(url)
    assert "secret" not in str(info.value)


def test_list_events_accepts_keyword_filters_and_user_names(fresh_store: AuditStore) -> None:
    fill(fresh_store, 2)
    fresh_store.append(NewEvent(action="case.rejected", actor="dr.x", outcome=4,
                                outcome_description="File 1 of 1 is not a DICOM file."))  # fmt: skip
    [rejected] = fresh_store.list_events("auditor", action="case.rejected", actor="dr.x")
    assert rejected.outcome == 4 and rejected.type_code == "110107"
    assert fresh_store.get_event(rejected.id, viewer="auditor") == rejected
    assert fresh_store.verify(actor="auditor").ok
    viewed = fresh_store.list_events("auditor", EventFilter(action="audit.viewed"))
    assert {e.actor for e in viewed} == {"auditor"} and len(viewed) == 2


def test_generated_uncertainty_sentence_is_allowed_but_not_elsewhere(
    fresh_store: AuditStore,
) -> None:
    sentence = ("The most probable diagnosis (pneumonia) has probability 0.41, below the model "
                "card's abstention threshold of 0.50; treat this answer as uncertain.")  # fmt: skip
    ok = fresh_store.append(NewEvent(action="prediction.made", actor="dr",
                                     payload={"prediction": {"uncertainty_reason": sentence}}))  # fmt: skip
    assert ok.payload["prediction"]["uncertainty_reason"] == sentence
    with pytest.raises(AuditError, match="sentence"):
        fresh_store.append(
            NewEvent(action="prediction.made", actor="dr", payload={"note": sentence})
        )


def test_database_errors_become_audit_errors(fresh_store: AuditStore) -> None:
    fill(fresh_store, 1)
    drop_triggers(fresh_store)
    raw(fresh_store, "DROP TABLE audit_feedback")
    raw(fresh_store, "DROP TABLE audit_events")
    with pytest.raises(AuditError, match="could not be written"):
        fresh_store.append(submitted())
    with pytest.raises(AuditError, match="could not be read"):
        fresh_store.verify()


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (10_001, 0), (5, -1)])
def test_list_events_refuses_bad_paging(fresh_store: AuditStore, limit: int, offset: int) -> None:
    with pytest.raises(AuditError, match="between 1 and"):
        fresh_store.list_events("auditor", limit=limit, offset=offset)


def test_postgres_refuses_truncate(fresh_store: AuditStore) -> None:
    fill(fresh_store, 2)
    if fresh_store.engine.dialect.name != "postgresql":
        return  # SQLite has no TRUNCATE; its DELETE is covered above
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        raw(fresh_store, "TRUNCATE audit_events CASCADE")
    assert fresh_store.count() == 2
