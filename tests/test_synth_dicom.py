"""Generated DICOM files: valid, 12-bit, lossless, correctly inverted, and accepted by intake."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from moe_app.config import SAMPLE_CASES_DIR
from moe_app.synth.dicom import sample_style, stored_pixels
from moe_app.synth.generate import SynthCase, SynthConfig, generate_case, write_case
from moe_app.synth.samples import SLOTS
from tests.conftest import skip_or_fail

KEY = b"\x01" * 32  # pseudonym key for intake in tests


def _load_case_folder():  # noqa: ANN202 - returns intake's function
    try:
        from moe_app.intake import load_case_folder
    except ImportError:
        skip_or_fail("moe_app.intake.load_case_folder is not available")
    return load_case_folder


@pytest.fixture(scope="module")
def imaged_case() -> SynthCase:
    cfg = SynthConfig(image_size=128)
    return next(c for c in (generate_case(i, 21, cfg) for i in range(40)) if c.film is not None)


STYLES = [
    ("MONOCHROME2", ExplicitVRLittleEndian, False),
    ("MONOCHROME1", ExplicitVRLittleEndian, True),
    ("MONOCHROME2", RLELossless, False),
    ("MONOCHROME1", RLELossless, False),
    ("MONOCHROME2", JPEG2000Lossless, True),
]


@pytest.mark.parametrize(("photometric", "syntax", "two_windows"), STYLES)
def test_dicom_is_valid_12_bit_and_lossless(
    imaged_case: SynthCase, tmp_path: Path, photometric: str, syntax: str, two_windows: bool
) -> None:
    style = dataclasses.replace(imaged_case.style, photometric=photometric, transfer_syntax=syntax, two_windows=two_windows)
    case = dataclasses.replace(imaged_case, style=style)
    ds = pydicom.dcmread(write_case(case, tmp_path) / "image.dcm")
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    assert ds.PhotometricInterpretation == photometric
    assert ds.Modality in ("CR", "DX") and ds.ViewPosition in ("PA", "AP")
    assert ds.PatientName and ds.PatientID and ds.PatientBirthDate and ds.AccessionNumber and ds.InstitutionName
    pixels = ds.pixel_array
    assert pixels.max() <= 4095
    np.testing.assert_array_equal(pixels, stored_pixels(case.film.pixels, style))  # lossless
    centre = ds.WindowCenter[0] if two_windows else ds.WindowCenter
    rescaled = pixels * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert rescaled.min() <= float(centre) <= rescaled.max()


def test_monochrome1_is_the_inverse(imaged_case: SynthCase) -> None:
    m2 = stored_pixels(imaged_case.film.pixels, dataclasses.replace(imaged_case.style, photometric="MONOCHROME2"))
    m1 = stored_pixels(imaged_case.film.pixels, dataclasses.replace(imaged_case.style, photometric="MONOCHROME1"))
    np.testing.assert_array_equal(m1.astype(int), 4095 - m2.astype(int))


def test_styles_cover_the_configured_mix() -> None:
    rng = np.random.default_rng(13)
    styles = [sample_style(rng) for _ in range(2000)]
    m1 = np.mean([s.photometric == "MONOCHROME1" for s in styles])
    compressed = np.mean([s.transfer_syntax != ExplicitVRLittleEndian for s in styles])
    assert 0.08 < m1 < 0.12 and 0.17 < compressed < 0.23
    assert {s.transfer_syntax for s in styles} == {ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless}
    assert {s.modality for s in styles} == {"CR", "DX"} and {s.view for s in styles} == {"PA", "AP"}


def test_generated_cases_pass_intake(tmp_path: Path) -> None:
    load_case_folder = _load_case_folder()
    cfg = SynthConfig(image_size=96, p_monochrome1=0.5, p_compressed=0.5)
    cases = [generate_case(i, 17, cfg) for i in range(16)]
    for case in cases:
        loaded = load_case_folder(write_case(case, tmp_path), key=KEY)
        assert loaded.modalities["image"] == (case.film is not None)
        assert loaded.modalities["report"] == (case.report is not None)
        if case.film is not None:
            assert loaded.image.photometric == case.style.photometric
            # intake's model input is bright = dense whatever the photometric interpretation
            lungs = loaded.image.model_input[30:60, 15:35].mean()
            abdomen = loaded.image.model_input[85:95, 30:66].mean()
            assert abdomen > lungs
        if case.vitals is not None:
            assert loaded.sex == case.sex


def test_sample_cases_are_committed_and_pass_intake() -> None:
    load_case_folder = _load_case_folder()
    folders = sorted(p for p in SAMPLE_CASES_DIR.iterdir() if p.is_dir())
    assert [p.name for p in folders] == sorted(s.name for s in SLOTS)
    readme = (SAMPLE_CASES_DIR / "README.md").read_text(encoding="utf-8")
    total = sum(f.stat().st_size for f in SAMPLE_CASES_DIR.rglob("*") if f.is_file())
    assert total < 6 * 1024**2
    syntaxes, photometrics, missing = set(), set(), set()
    for folder in folders:
        assert f"| {folder.name} |" in readme
        case = load_case_folder(folder, key=KEY)
        files = {p.name for p in folder.iterdir()}
        missing |= {m for m, name in (("image", "image.dcm"), ("report", "report.txt"), ("vitals", "vitals.json")) if name not in files}
        assert (case.image is None) == ("image.dcm" not in files)
        assert (case.report is None) == ("report.txt" not in files)
        assert (case.vitals is None) == ("vitals.json" not in files)  # sex may still come from the DICOM header
        if case.image is not None:
            syntaxes.add(case.image.transfer_syntax)
            photometrics.add(case.image.photometric)
    assert missing == {"image", "report", "vitals"}
    assert "MONOCHROME1" in photometrics and len(syntaxes) >= 2


def test_uids_are_stable_and_unique(tmp_path: Path) -> None:
    cfg = SynthConfig(image_size=32, p_missing_image=0.0)
    uids = []
    for i in range(5):
        ds = pydicom.dcmread(write_case(generate_case(i, 1, cfg), tmp_path) / "image.dcm")
        uids.append(ds.SOPInstanceUID)
    assert len(set(uids)) == 5
    again = pydicom.dcmread(write_case(generate_case(0, 1, cfg), tmp_path / "again") / "image.dcm")
    assert again.SOPInstanceUID == uids[0]


def test_committed_samples_match_the_generator() -> None:
    """sample_cases/ is what `moe-app synth --samples` writes (regenerate it after generator changes)."""
    from moe_app.synth.generate import vitals_json
    from moe_app.synth.samples import SAMPLE_SEED, sample_indices

    for slot_name, index in sample_indices().items():
        case = generate_case(index, SAMPLE_SEED, SynthConfig(image_size=32))
        folder = SAMPLE_CASES_DIR / slot_name
        if (folder / "report.txt").exists():
            assert (folder / "report.txt").read_text(encoding="utf-8") == case.report, slot_name
        if (folder / "vitals.json").exists():
            assert (folder / "vitals.json").read_text(encoding="utf-8") == vitals_json(case.vitals, case.sex), slot_name
