"""Bad input of every kind ends in a CaseError with an actionable message, nothing else."""

from __future__ import annotations

import io
import math
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moe_app.config import IntakeLimits
from moe_app.errors import CaseError
from moe_app.intake import (
    load_case_folder,
    load_upload,
    parse_vitals,
    read_report,
    read_vitals_file,
)

sys.path.insert(0, str(Path(__file__).parent))
from conftest_intake import KEY, image_dataset, write_dicom  # noqa: E402


def _upload(*files: Path, **kwargs: object) -> object:
    options = {"report_text": None, "vitals": None, "key": KEY, "case_id": "bad"} | kwargs
    return load_upload(list(files), **options)  # type: ignore[arg-type]


@pytest.fixture
def dicom_file(tmp_path: Path) -> Path:
    return write_dicom(image_dataset(), tmp_path / "good.dcm")


def test_good_file_loads(dicom_file: Path) -> None:
    case = _upload(dicom_file)
    assert case.image is not None and case.image.model_input.shape == (32, 32)


def test_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with pytest.raises(CaseError, match="zero-byte"):
        _upload(empty)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated_file(dicom_file: Path, tmp_path: Path, keep: float) -> None:
    data = dicom_file.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CaseError, match="truncated|damaged|no image"):
        _upload(cut)


def test_png_renamed_dcm(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(buffer, format="PNG")
    fake = tmp_path / "scan.dcm"
    fake.write_bytes(buffer.getvalue())
    with pytest.raises(CaseError, match="not a DICOM file.*PNG"):
        _upload(fake)


def test_dataset_without_pixel_data(tmp_path: Path) -> None:
    ds = image_dataset()
    del ds.PixelData
    path = write_dicom(ds, tmp_path / "nopix.dcm")
    with pytest.raises(CaseError, match="no pixel data"):
        _upload(path)


def test_absurd_dimensions_are_refused_before_decoding(tmp_path: Path) -> None:
    ds = image_dataset()
    ds.Rows, ds.Columns = 60000, 60000
    path = write_dicom(ds, tmp_path / "huge.dcm")
    start = time.perf_counter()
    with pytest.raises(CaseError, match="60000 x 60000"):
        _upload(path)
    assert time.perf_counter() - start < 2.0


def test_too_many_frames_are_refused(tmp_path: Path) -> None:
    path = write_dicom(
        image_dataset(np.zeros((3, 4, 4), np.uint16), modality="CT"), tmp_path / "mf.dcm"
    )
    with pytest.raises(CaseError, match="3 frames"):
        _upload(path, limits=IntakeLimits(max_frames=2))


def test_undecodable_transfer_syntax_says_so(dicom_file: Path, tmp_path: Path) -> None:
    import pydicom
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(dicom_file)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder here
    ds.PixelData = encapsulate([b"\x00" * 64])
    path = tmp_path / "mpeg.dcm"
    ds.save_as(path)
    with pytest.raises(CaseError, match="cannot decode"):
        _upload(path)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


@pytest.mark.parametrize(
    "bad_name", ["../evil.dcm", "a/../../evil.dcm", "/tmp/evil.dcm", "C:/evil.dcm", "..\\evil.dcm"]
)
def test_zip_with_escaping_entries_is_refused_and_leaves_nothing(
    tmp_path: Path, dicom_file: Path, bad_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    work = tmp_path / "work"
    work.mkdir()
    archive = _zip(
        work / "case.zip", {"ok.dcm": dicom_file.read_bytes(), bad_name: dicom_file.read_bytes()}
    )
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(CaseError, match="outside the archive"):
        _upload(archive)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not list(private_tmp.iterdir())
    assert not Path("/tmp/evil.dcm").exists()


def test_zip_with_good_entries_loads_with_its_report(tmp_path: Path, dicom_file: Path) -> None:
    archive = _zip(
        tmp_path / "case.zip",
        {
            "case/img/1": dicom_file.read_bytes(),
            "case/report.txt": b"Seen by Dr John Smith. Clear lungs.",
            "case/vitals.json": b'{"heart_rate_bpm": 80}',
        },
    )
    case = _upload(archive)
    assert case.image is not None
    assert case.report == "Seen by Dr [NAME]. Clear lungs."
    assert case.vitals == {"heart_rate_bpm": 80.0}
    typed = _upload(archive, report_text="Typed report.", vitals={"spo2_percent": 97})
    assert typed.report == "Typed report." and typed.vitals == {"spo2_percent": 97.0}


def test_zip_limits_count_and_size(tmp_path: Path, dicom_file: Path) -> None:
    archive = _zip(tmp_path / "many.zip", {f"{i}.dcm": dicom_file.read_bytes() for i in range(5)})
    with pytest.raises(CaseError, match="5 files; the limit is 4"):
        _upload(archive, limits=IntakeLimits(max_files=4))
    with pytest.raises(CaseError, match="kB; the limit is 1 kB"):
        _upload(archive, limits=IntakeLimits(max_total_bytes=1000))


@pytest.mark.parametrize(
    "content", [b"PK\x03\x04 definitely not a zip", b"PK\x03\x04" + os.urandom(64)]
)
def test_damaged_zip(tmp_path: Path, content: bytes) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(content)
    with pytest.raises(CaseError, match="zip"):
        _upload(archive)


def test_empty_folder_is_an_empty_case(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="empty"):
        load_case_folder(tmp_path, key=KEY)


def test_folder_of_non_dicom_files_is_an_empty_case(tmp_path: Path) -> None:
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04xx")
    (tmp_path / "photo.dcm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(CaseError, match="empty"):
        load_case_folder(tmp_path, key=KEY)


def test_folder_with_only_broken_dicom_raises_its_reason(tmp_path: Path, dicom_file: Path) -> None:
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "x").write_bytes(dicom_file.read_bytes()[:200])
    with pytest.raises(CaseError, match="truncated or damaged"):
        load_case_folder(tmp_path / "case", key=KEY)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="does not exist"):
        load_case_folder(tmp_path / "nope", key=KEY)


@pytest.mark.parametrize(
    ("vitals", "field"),
    [
        ({"heart_rate_bpm": "88"}, "heart_rate_bpm"),
        ({"spo2_percent": math.nan}, "spo2_percent"),
        ({"temperature_c": math.inf}, "temperature_c"),
        ({"systolic_bp_mmhg": -120}, "systolic_bp_mmhg"),
        ({"heart_rate_bpm": 0}, "heart_rate_bpm"),
        ({"spo2_percent": 101}, "spo2_percent"),
        ({"temperature_c": 50}, "temperature_c"),
        ({"temperature_c": 24.9}, "temperature_c"),
        ({"age_years": True}, "age_years"),
        ({"wbc_10e9_per_l": [5]}, "wbc_10e9_per_l"),
        ({"bnp_pg_per_ml": 10**400}, "bnp_pg_per_ml"),
        ({"pulse": 80}, "pulse"),
        ({"sex": "X"}, "sex"),
        ({"sex": 1}, "sex"),
    ],
)
def test_bad_vitals_name_the_field(vitals: dict[str, object], field: str) -> None:
    with pytest.raises(CaseError, match=field):
        parse_vitals(vitals)


def test_vitals_errors_do_not_repeat_typed_text() -> None:
    with pytest.raises(CaseError) as error:
        parse_vitals({"heart_rate_bpm": "Jane Doe"})
    assert "Jane" not in str(error.value) and "text" in str(error.value)


def test_numpy_numbers_are_numbers() -> None:
    assert parse_vitals({"heart_rate_bpm": np.int64(80)})[0] == {"heart_rate_bpm": 80.0}


def test_good_vitals_and_absent_fields() -> None:
    values, sex = parse_vitals(
        {"heart_rate_bpm": 88, "spo2_percent": 92.5, "sex": "f", "bnp_pg_per_ml": None}
    )
    assert values == {"heart_rate_bpm": 88.0, "spo2_percent": 92.5}
    assert sex == "F"
    assert parse_vitals({}) == ({}, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"spo2_percent": NaN}', "spo2_percent"),
        ('{"heart_rate_bpm": 80,', "not valid JSON"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_vitals_json_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "vitals.json"
    path.write_text(text)
    with pytest.raises(CaseError, match=message):
        read_vitals_file(path)


def test_vitals_json_string_in_upload(dicom_file: Path) -> None:
    with pytest.raises(CaseError, match="heart_rate_bpm"):
        _upload(dicom_file, vitals='{"heart_rate_bpm": -3}')
    assert _upload(dicom_file, vitals='{"heart_rate_bpm": 70}').vitals == {"heart_rate_bpm": 70.0}


def test_ten_megabyte_binary_report_fails_fast(tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_bytes(bytes(range(256)) * (10 * 1024 * 1024 // 256))
    start = time.perf_counter()
    with pytest.raises(CaseError, match="not plain text"):
        read_report(report)
    with pytest.raises(CaseError, match="not plain text"):
        load_case_folder(tmp_path, key=KEY)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Fièvre".encode("latin-1"), "not UTF-8"),
        (b"x" * (65 * 1024), "limit is 64 KB"),
        (b"ok\x07bell", "control"),
    ],
)
def test_bad_reports(data: bytes, message: str) -> None:
    with pytest.raises(CaseError, match=message):
        read_report(data)


def test_report_with_bom_reads_as_text() -> None:
    assert read_report("\ufeffClear lungs.".encode()) == "Clear lungs."


def test_upload_of_a_non_dicom_text_file(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(CaseError, match="not a DICOM file.*text"):
        _upload(notes)
