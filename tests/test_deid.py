"""De-identification: PS3.15 Basic Profile on a PHI-filled dataset, pseudonyms, keys, reports."""

from __future__ import annotations

import io
import os
import re
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from moe_app.config import REPO_ROOT
from moe_app.deid import (
    EMPTY,
    REMOVE,
    deidentify,
    load_or_create_key,
    pseudonym,
    remap_uid,
    scrub_report,
)
from moe_app.errors import ConfigError
from moe_app.intake import load_case_folder

sys.path.insert(0, str(Path(__file__).parent))
from conftest_intake import KEY, OTHER_KEY, image_dataset, write_dicom  # noqa: E402

STUDY_UID = "1.2.826.0.1.3680043.8.498.777"
SOP_UID = "1.2.826.0.1.3680043.8.498.778"
# keyword -> PHI value; every value is unique so it can be searched for anywhere.
PHI: dict[str, str] = {
    "PatientName": "Doe^Jane^Q",
    "PatientID": "MRN99887766",
    "OtherPatientIDs": "ALTID5544",
    "OtherPatientNames": "Roe^Janet",
    "PatientBirthName": "Birthname^Jane",
    "PatientMotherBirthName": "Mother^Maiden",
    "PatientBirthDate": "19610412",
    "PatientAddress": "12 Acacia Avenue, Springfield",
    "PatientTelephoneNumbers": "555-867-5309",
    "PatientAge": "063Y",
    "PatientSex": "F",
    "PatientWeight": "71.5",
    "EthnicGroup": "EthnicValueX",
    "Occupation": "Lighthousekeep",
    "MilitaryRank": "Colonel",
    "MedicalRecordLocator": "Basement shelf 9",
    "AdditionalPatientHistory": "History of smoking, lives with daughter Ann",
    "PatientComments": "Prefers to be called Janie",
    "AccessionNumber": "ACC123456",
    "StudyID": "STUDY4242",
    "StudyDescription": "Chest for Jane Doe",
    "SeriesDescription": "PA chest Doe",
    "ReferringPhysicianName": "House^Gregory",
    "PerformingPhysicianName": "Wilson^James",
    "NameOfPhysiciansReadingStudy": "Cuddy^Lisa",
    "PhysiciansOfRecord": "Foreman^Eric",
    "RequestingPhysician": "Chase^Robert",
    "OperatorsName": "Tech^Terry",
    "InstitutionName": "Princeton Plainsboro",
    "InstitutionAddress": "1 Hospital Road, Plainsboro",
    "InstitutionalDepartmentName": "Diagnostic Medicine Dept",
    "StationName": "XRAYROOM7",
    "DeviceSerialNumber": "SN-998877",
    "ImageComments": "Patient Jane was uncooperative",
    "StudyComments": "Call daughter at 555-0100",
    "RequestedProcedureDescription": "CXR for Doe",
    "ProtocolName": "Doe protocol",
    "StudyDate": "20240312",
    "SeriesDate": "20240312",
    "AcquisitionDateTime": "20240312101530",
}
PRIVATE_VALUE = "PrivateSecretValue"
OVERLAY_VALUE = "OverlayLabelDoe"
NESTED_NAME = "Nested^Physician"
NESTED_ID = "NESTEDID77"


@pytest.fixture
def phi_dataset() -> Dataset:
    ds = image_dataset(np.zeros((8, 8), np.uint16), study_uid=STUDY_UID)
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.SOPInstanceUID = SOP_UID
    ds.file_meta.MediaStorageSOPInstanceUID = SOP_UID
    ds.file_meta.SourceApplicationEntityTitle = "PACS_AE_DOE"
    block = ds.private_block(0x0011, "ACME Corp", create=True)
    block.add_new(0x01, "LO", PRIVATE_VALUE)
    ds.add_new(0x60000022, "LO", OVERLAY_VALUE)  # Overlay Description
    ds.add_new(0x60003000, "OW", b"\x01\x02" * 8)  # Overlay Data
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    item.ReferencedSOPInstanceUID = SOP_UID
    item.PersonName = NESTED_NAME
    item.PatientName = NESTED_NAME + "^Jr"
    item.PatientID = NESTED_ID
    ds.ReferencedImageSequence = Sequence([item])
    return ds


def _all_values(ds: Dataset) -> list[str]:
    out = []
    for elem in ds.iterall():
        out.append(str(elem.value))
    return out


def test_no_phi_value_survives(phi_dataset: Dataset) -> None:
    clean, _ = deidentify(phi_dataset, key=KEY)
    buffer = io.BytesIO()
    clean.save_as(buffer, enforce_file_format=True)
    written = buffer.getvalue().decode("latin-1")
    text = str(clean) + str(clean.file_meta)
    values = " ".join(_all_values(clean))
    for keyword, value in [
        *PHI.items(),
        ("private", PRIVATE_VALUE),
        ("overlay", OVERLAY_VALUE),
        ("nested", NESTED_NAME),
        ("nested id", NESTED_ID),
        ("AE", "PACS_AE_DOE"),
        ("uid", STUDY_UID),
        ("uid", SOP_UID),
    ]:
        if keyword in ("PatientSex", "PatientWeight"):  # short values: check the element itself
            assert clean.get(keyword, "") in ("", None), keyword
            continue
        assert value not in values, keyword
        assert value not in text, keyword
        assert value not in written, keyword
    assert not any(tag.group == 0x6000 for tag in [elem.tag for elem in clean])
    assert not any(tag.is_private for tag in [elem.tag for elem in clean])
    assert clean.PatientIdentityRemoved == "YES"
    assert "Basic Profile" in clean.DeidentificationMethod[0]
    assert clean.PatientName == clean.PatientID == pseudonym(KEY, PHI["PatientID"], STUDY_UID)


def test_input_is_not_modified(phi_dataset: Dataset) -> None:
    deidentify(phi_dataset, key=KEY)
    assert phi_dataset.PatientName == PHI["PatientName"]
    assert phi_dataset.SOPInstanceUID == SOP_UID


def test_uids_are_remapped_consistently(phi_dataset: Dataset) -> None:
    clean, _ = deidentify(phi_dataset, key=KEY)
    again, _ = deidentify(phi_dataset, key=KEY)
    assert clean.SOPInstanceUID == again.SOPInstanceUID == remap_uid(KEY, SOP_UID)
    assert clean.ReferencedImageSequence[0].ReferencedSOPInstanceUID == clean.SOPInstanceUID
    assert clean.file_meta.MediaStorageSOPInstanceUID == clean.SOPInstanceUID
    assert clean.SOPClassUID == phi_dataset.SOPClassUID  # well-known class UIDs stay
    for uid in (clean.SOPInstanceUID, clean.StudyInstanceUID, clean.SeriesInstanceUID):
        assert re.fullmatch(r"2\.25\.[1-9]\d*", uid) and len(uid) <= 64
    assert len({clean.SOPInstanceUID, clean.StudyInstanceUID, clean.SeriesInstanceUID}) == 3
    other, _ = deidentify(phi_dataset, key=OTHER_KEY)
    assert other.SOPInstanceUID != clean.SOPInstanceUID


def test_dates_are_shifted_by_one_offset_per_patient(phi_dataset: Dataset) -> None:
    clean, _ = deidentify(phi_dataset, key=KEY)
    assert clean.StudyDate == clean.SeriesDate != PHI["StudyDate"]
    assert clean.AcquisitionDateTime[:8] == clean.StudyDate
    assert clean.AcquisitionDateTime[8:] == PHI["AcquisitionDateTime"][8:]
    assert clean.PatientBirthDate == ""
    assert clean.LongitudinalTemporalInformationModified == "MODIFIED"


def test_pseudonym_is_stable_per_patient_and_study() -> None:
    first = pseudonym(KEY, "MRN1", STUDY_UID)
    assert first == pseudonym(KEY, "MRN1", STUDY_UID)
    assert re.fullmatch(r"case-[0-9a-f]{16}", first)
    assert first != pseudonym(KEY, "MRN2", STUDY_UID)
    assert first != pseudonym(KEY, "MRN1", STUDY_UID + ".1")
    assert first != pseudonym(OTHER_KEY, "MRN1", STUDY_UID)


@pytest.mark.parametrize(
    ("modality", "burned", "warns"),
    [
        ("US", None, True),
        ("SC", "YES", True),
        ("OT", "NO", False),
        ("CR", None, False),
        ("CR", "YES", True),
    ],
)
def test_burned_in_annotation_warning(modality: str, burned: str | None, warns: bool) -> None:
    ds = image_dataset(np.zeros((4, 4), np.uint16), modality=modality)
    if burned is not None:
        ds.BurnedInAnnotation = burned
    _, warnings = deidentify(ds, key=KEY)
    assert bool(warnings) == warns
    assert all("burned into the pixels" in w for w in warnings)


def test_case_from_folder_carries_no_phi(tmp_path: Path, phi_dataset: Dataset) -> None:
    write_dicom(phi_dataset, tmp_path / "case" / "IM0001")
    (tmp_path / "case" / "report.txt").write_text(
        "Jane Doe seen by Dr Gregory House on 12/03/2024, MRN 99887766."
    )
    case = load_case_folder(tmp_path / "case", key=KEY)
    assert case.image is not None
    blob = " ".join(
        [
            *case.image.header.values(),
            case.image.series_description,
            *case.warnings,
            case.report or "",
            case.pseudonym,
            str(case.summary()),
        ]
    )
    for keyword, value in PHI.items():
        if len(value) > 3 and keyword not in ("PatientWeight",):
            assert value not in blob, keyword
    assert "House" not in blob and "99887766" not in blob
    assert case.pseudonym == pseudonym(KEY, PHI["PatientID"], STUDY_UID)
    assert case.sex == "F"  # taken from the original header, as no vitals were given


def test_report_scrubbing() -> None:
    report = (
        "Patient: John SMITH, MRN: 12345678, DOB 03/04/1950. Seen by Dr. Alice B. Jones on 2024-03-12 "
        "(12 March 2024). Call Mrs Patel on (020) 7946 0958 or +44 20 7946 0958, email a.jones@hosp.org. "
        "NHS No 943 476 5919. BP 120/80, HR 110, SpO2 92%, T 38.5 C, D-dimer 1200. RLL consolidation."
    )
    clean = scrub_report(report)
    for phi in (
        "John",
        "SMITH",
        "12345678",
        "03/04/1950",
        "Alice",
        "Jones",
        "2024-03-12",
        "12 March 2024",
        "Patel",
        "7946",
        "a.jones",
        "943 476",
    ):
        assert phi not in clean, phi
    for kept in (
        "BP 120/80",
        "HR 110",
        "SpO2 92%",
        "T 38.5 C",
        "D-dimer 1200",
        "RLL consolidation",
    ):
        assert kept in clean, kept
    assert {"[NAME]", "[DATE]", "[ID]", "[PHONE]", "[EMAIL]"} <= set(
        re.findall(r"\[[A-Z]+\]", clean)
    )


def test_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "pseudonym.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no temp file left


def test_key_refused_inside_repo_or_when_open_or_wrong(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="outside the code repository"):
        load_or_create_key(REPO_ROOT / "pseudonym.key")
    assert not (REPO_ROOT / "pseudonym.key").exists()
    loose = tmp_path / "loose.key"
    loose.write_bytes(os.urandom(32))
    loose.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_key(loose)
    short = tmp_path / "short.key"
    short.write_bytes(b"abc")
    short.chmod(0o600)
    with pytest.raises(ConfigError, match="32-byte"):
        load_or_create_key(short)


def _phi_value(vr: str) -> object:
    """A recognisable value valid for a VR."""
    vr = vr.split(" or ")[0]
    values: dict[str, object] = {
        "PN": "Phi^Value",
        "DA": "20200101",
        "TM": "101010",
        "DT": "20200101101010",
        "AS": "050Y",
        "DS": "12.5",
        "IS": "7",
        "UI": "1.2.3.4.5",
        "FL": 1.5,
        "FD": 1.5,
        "US": 7,
        "UL": 7,
        "SS": 7,
        "SL": 7,
        "UV": 7,
        "SV": 7,
        "AT": 0x00100010,
        "CS": "PHIVAL",
    }
    if vr in values:
        return values[vr]
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return b"PHIVAL"
    if vr == "SQ":
        item = Dataset()
        item.CodeMeaning = "PHIVAL"
        return Sequence([item])
    return "PHIVAL"  # LO, SH, LT, ST, UT, UC, UR, AE


@pytest.mark.parametrize("keyword", sorted(REMOVE | EMPTY))
def test_every_profile_attribute_is_removed_or_emptied(keyword: str) -> None:
    ds = image_dataset(np.zeros((2, 2), np.uint16))
    vr = dictionary_VR(tag_for_keyword(keyword))
    setattr(ds, keyword, _phi_value(vr))
    clean, _ = deidentify(ds, key=KEY)
    if keyword in EMPTY:
        assert clean[keyword].value in ("", None), keyword
    else:
        assert keyword not in clean, keyword
    assert "PHIVAL" not in str(clean) and "Phi^Value" not in str(clean)
