"""FHIR AuditEvent and CSV exports: valid FHIR R4 (checked with fhir.resources R4B), audited."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from moe_app.audit import ACTIONS, AuditStore, EventFilter, NewEvent
from moe_app.audit.events import DCM_SYSTEM
from moe_app.audit.export import CSV_COLUMNS
from moe_app.errors import AuditError
from tests.conftest_audit import CLINICIAN, audit_url, fresh_store

__all__ = ["audit_url", "fresh_store"]  # fixtures used by name


def one_of_each(store: AuditStore) -> None:
    """Every action once, with and without model, pseudonym and client address."""
    prediction = None
    for i, action in enumerate(ACTIONS):
        if action == "feedback.recorded":
            continue
        event = store.append(
            NewEvent(
                action=action, actor="dr.test", actor_role="radiologist",
                client_address=("10.0.0.9", "ws-12", None)[i % 3],
                outcome=(0, 4, 8, 12)[i % 4], outcome_description="" if i % 2 else "fine",
                case_pseudonym=f"case-{i:04x}" if i % 2 else None,
                model_version="2.0.1" if "prediction" in action else None,
                model_weights_sha256="9f" * 32 if "prediction" in action else None,
                runtime="onnxruntime-cuda" if "prediction" in action else None,
                payload={"gate_weights": {"image": 0.5, "report": 0.5}, "n": i},
            )
        )  # fmt: skip
        prediction = event if action == "prediction.made" else prediction
    assert prediction is not None
    store.record_feedback(prediction.id, CLINICIAN, agree=True, comment="=HYPERLINK(x)")


def test_fhir_export_validates_as_r4_audit_events(fresh_store: AuditStore, tmp_path: Path) -> None:
    one_of_each(fresh_store)
    n = fresh_store.count()
    assert fresh_store.export_fhir(tmp_path / "out.json") == n
    bundle = Bundle.model_validate_json((tmp_path / "out.json").read_text())
    assert bundle.type == "collection" and len(bundle.entry) == n
    for entry in bundle.entry:
        event = AuditEvent.model_validate(entry.resource.model_dump())
        assert event.type.system == DCM_SYSTEM and event.action in "CRUDE"
        assert event.outcome in ("0", "4", "8", "12") and event.recorded.tzinfo is not None
        assert event.agent[0].requestor is True
    resources = [e["resource"] for e in json.loads((tmp_path / "out.json").read_text())["entry"]]
    by_seq = {r["id"]: r for r in resources}
    predicted = next(r for r in resources if r["subtype"][-1]["code"] == "prediction.made")
    model = next(d for d in predicted["contained"] if d["id"] == "model")
    assert model["version"][0]["value"] == "2.0.1"
    assert model["identifier"][0]["value"] == "9f" * 32
    login = next(r for r in resources if r["subtype"][-1]["code"] == "login.failed")
    assert login["subtype"][0] == {"system": DCM_SYSTEM, "code": "110122", "display": "Login"}
    assert by_seq["moe-audit-1"]["source"]["site"] == "test-site"


def test_fhir_export_of_empty_log_is_a_valid_bundle(fresh_store: AuditStore) -> None:
    out = io.StringIO()
    assert fresh_store.export_fhir(out) == 0
    assert Bundle.model_validate_json(out.getvalue()).entry is None


def test_csv_export_has_header_and_one_row_per_event(fresh_store: AuditStore) -> None:
    one_of_each(fresh_store)
    out = io.StringIO()
    count = fresh_store.export_csv(out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == count == fresh_store.count() - 1
    assert [int(r["seq"]) for r in rows] == list(range(1, count + 1))
    feedback = rows[-1]
    assert json.loads(feedback["payload"])["comment"] == "=HYPERLINK(x)"  # inside JSON: inert
    assert all(not v.startswith(("=", "+", "@")) for r in rows for v in r.values())


@pytest.mark.parametrize("fmt", ["fhir", "csv"])
def test_export_is_audited(fresh_store: AuditStore, fmt: str, tmp_path: Path) -> None:
    fresh_store.append(NewEvent(action="app.started", actor="moe-app"))
    writer = fresh_store.export_fhir if fmt == "fhir" else fresh_store.export_csv
    writer(tmp_path / "out", actor=CLINICIAN)
    [exported] = fresh_store.list_events(CLINICIAN, EventFilter(action="audit.exported"))
    assert exported.actor == CLINICIAN.name and exported.type_code == "110106"
    assert exported.payload["format"] == fmt and exported.payload["count"] == 1
    import hashlib

    assert exported.payload["sha256"] == hashlib.sha256((tmp_path / "out").read_bytes()).hexdigest()


def test_export_to_unwritable_path(fresh_store: AuditStore, tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="Cannot write"):
        fresh_store.export_csv(tmp_path / "missing-dir" / "out.csv")
