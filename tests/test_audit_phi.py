"""No PHI in the audit store: identifiers planted in a case never reach the database bytes.

The case is loaded through `moe_app.intake.load_case_folder` (intake de-identifies it) and
recorded the way the pipeline does (`moe_app.pipeline.prediction_payload`): pseudonym, input
hashes, modalities and model outputs, including the generated uncertainty sentence.
Then every byte of the SQLite database, its WAL and shared-memory files, and both exports
are searched for each planted identifier.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from moe_app.audit import Actor, AuditStore, EventFilter, NewEvent
from moe_app.errors import AuditError
from moe_app.intake.loader import load_case_folder
from moe_app.pipeline import prediction_payload
from moe_app.prediction import ExpertOpinion, Prediction
from tests.conftest_audit import CLINICIAN

PATIENT_NAME = ("Quartermaine", "Zebulon")
PATIENT_ID = "MRN88812345"
BIRTH_DATE = "19470312"
REFERRER = "Drumwright"
REPORT = (
    f"Mr {PATIENT_NAME[1]} {PATIENT_NAME[0]} (MRN {PATIENT_ID}, born 12/03/1947) reports "
    "crushing retrosternal pain radiating to the jaw since the picnic at Wolverhampton.\n"
)
# As moe_app.runtime.postprocess words it (not imported: it loads torch).
REASON = (
    "The most probable diagnosis (heart_failure) has probability 0.45, below the model card's "
    "abstention threshold of 0.50; treat this answer as uncertain and review the case yourself."
)
PLANTED = (*PATIENT_NAME, PATIENT_ID, BIRTH_DATE, "12/03/1947", REFERRER, "Wolverhampton",
           "retrosternal pain radiating")  # fmt: skip


def write_phi_case(folder: Path) -> Path:
    """A case folder full of identifiers: DICOM header, report text, vitals."""
    folder.mkdir()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName = "^".join(PATIENT_NAME)
    ds.PatientID, ds.PatientBirthDate, ds.PatientSex = PATIENT_ID, BIRTH_DATE, "M"
    ds.ReferringPhysicianName = f"{REFERRER}^Ophelia"
    ds.InstitutionName = "Wolverhampton Royal Infirmary"
    ds.Modality, ds.StudyDate = "CR", "20240312"
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(64 * 64, dtype=np.uint16) % 4096).reshape(64, 64).tobytes()
    ds.save_as(folder / "image.dcm", enforce_file_format=True)
    (folder / "report.txt").write_text(REPORT, encoding="utf-8")
    (folder / "vitals.json").write_text(json.dumps({"age_years": 77, "heart_rate_bpm": 112}))
    return folder


def uncertain_prediction(case_id: str) -> Prediction:
    probs = {"normal": 0.3, "heart_failure": 0.45, "pneumonia": 0.25}
    return Prediction(
        case=case_id, diagnosis="heart_failure", probabilities=probs,
        gating={"image": 0.6, "report": 0.4, "vitals": 0.0}, selected_experts=["image", "report"],
        experts={"image": ExpertOpinion("image", probs)},
        contributions={"image": {"heart_failure": 0.27}}, modalities={"image": True},
        uncertain=True, model_version="1.0.0", runtime="torch:cpu", latency_ms=12.5,
        uncertainty_reason=REASON,
    )  # fmt: skip


def record_case(store: AuditStore, folder: Path) -> None:
    """What the pipeline writes for one case, plus feedback, a search, and both exports."""
    case = load_case_folder(folder, key=b"k" * 32)
    assert case.report and case.image is not None  # intake really read the planted inputs
    store.append(NewEvent(action="case.submitted", actor=CLINICIAN.name,
                          case_pseudonym=case.pseudonym, payload={"input_hashes": case.input_hashes,
                                                                  "modalities": case.modalities}))  # fmt: skip
    event = store.append(
        NewEvent(action="prediction.made", actor=CLINICIAN.name, case_pseudonym=case.pseudonym,
                 model_version="1.0.0", model_weights_sha256="e" * 64, runtime="torch:cpu",
                 payload=prediction_payload(case, uncertain_prediction(case.case_id)))
    )  # fmt: skip
    assert event.payload["prediction"]["uncertainty_reason"]
    store.record_feedback(event.id, CLINICIAN, agree=False, corrected_label="pulmonary_embolism",
                          comment=f"born 12/03/1947, MRN {PATIENT_ID}")  # fmt: skip
    store.list_events(Actor("auditor"), EventFilter(text=PATIENT_NAME[0]))  # a search for a name
    store.export_fhir(folder.parent / "export.json")
    store.export_csv(folder.parent / "export.csv")


def test_no_planted_identifier_reaches_the_database(tmp_path: Path) -> None:
    folder = write_phi_case(tmp_path / f"{PATIENT_NAME[0]}_{PATIENT_ID}")  # a folder named badly
    db = tmp_path / "audit.db"
    with AuditStore.open(f"sqlite:///{db}") as store:
        record_case(store, folder)
        assert store.verify().ok
        files = [db, db.with_name("audit.db-wal"), db.with_name("audit.db-shm")]
        files += [tmp_path / "export.json", tmp_path / "export.csv"]
        blobs = {p.name: p.read_bytes().lower() for p in files if p.exists()}
    assert len(blobs) >= 4 and all(blobs.values())
    for identifier in PLANTED:
        needle = identifier.lower().encode("utf-8")
        leaks = [name for name, blob in blobs.items() if needle in blob]
        assert not leaks, f"planted identifier #{PLANTED.index(identifier)} found in {leaks}"


@pytest.mark.parametrize(
    "payload",
    [{"report_text": REPORT[:50]}, {"PatientName": "x"}, {"case": {"patient-id": "x"}},
     {"case_id": "x"}, {"report": REPORT}],
)  # fmt: skip
def test_raw_case_content_is_refused(tmp_path: Path, payload: dict) -> None:
    with AuditStore.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        with pytest.raises(AuditError):
            store.append(NewEvent(action="case.submitted", actor="dr", payload=payload))
        assert store.count() == 0
