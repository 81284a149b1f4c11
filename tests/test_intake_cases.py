"""Case folders and uploads: series grouping/ordering/picking, multi-frame, side files, CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from moe_app.config import IntakeLimits
from moe_app.deid import content_pseudonym
from moe_app.errors import CaseError
from moe_app.intake import commands, load_case_folder, load_upload

sys.path.insert(0, str(Path(__file__).parent))
from conftest_intake import KEY, image_dataset, write_dicom  # noqa: E402


def _const(value: int, shape: tuple[int, ...] = (16, 16)) -> np.ndarray:
    return np.full(shape, value, dtype=np.uint16)


def test_frontal_radiograph_is_picked_over_lateral_and_ct(tmp_path: Path) -> None:
    case_dir = tmp_path / "case-7"
    write_dicom(
        image_dataset(_const(100, (64, 64)), modality="CT", view=None, series_uid="1.2.3.1"),
        case_dir / "a" / "ct1",
    )
    write_dicom(image_dataset(_const(200), view="LL", series_uid="1.2.3.2"), case_dir / "b" / "lat")
    write_dicom(
        image_dataset(_const(300), view="PA", series_uid="1.2.3.3", window=(300, 100)),
        case_dir / "c" / "pa",
    )
    case = load_case_folder(case_dir, key=KEY)
    assert case.case_id == "case-7"
    image = case.image
    assert image is not None and image.n_series == 3
    assert "PA view" in image.series_description and "frontal" in image.series_description
    assert image.frames[0][0, 0] == 300
    assert image.windows[0].center == 300 and image.windows[0].name == "default"


def test_lateral_only_is_still_picked_and_says_why(tmp_path: Path) -> None:
    write_dicom(image_dataset(_const(1), view="LL", series_uid="1.2.3.2"), tmp_path / "lat")
    write_dicom(
        image_dataset(_const(2, (8, 8)), modality="OT", view=None, series_uid="1.2.3.9"),
        tmp_path / "ot",
    )
    case = load_case_folder(tmp_path, key=KEY)
    assert "lateral" in case.image.series_description


def test_instances_are_ordered_by_instance_number_then_position(tmp_path: Path) -> None:
    for name, number in (("z1", 1), ("a3", 3), ("m2", 2)):
        write_dicom(
            image_dataset(_const(number * 10), modality="CT", view=None, instance_number=number),
            tmp_path / name,
        )
    case = load_case_folder(tmp_path, key=KEY)
    assert [int(f[0, 0]) for f in case.image.frames] == [10, 20, 30]
    assert case.image.picked_index == 1  # middle slice for cross-sectional images
    for name, z in (("p1", 5.0), ("p2", -5.0), ("p3", 0.0)):
        ds = image_dataset(
            _const(int(z + 50)),
            modality="CT",
            view=None,
            instance_number=None,
            series_uid="1.2.3.4",
        )
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, z]
        write_dicom(ds, tmp_path / "pos" / name)
    stack = load_case_folder(tmp_path / "pos", key=KEY).image
    assert [int(f[0, 0]) for f in stack.frames] == [45, 50, 55]


def test_multi_frame_is_read_frame_by_frame_and_middle_frame_is_model_input(tmp_path: Path) -> None:
    frames = np.stack([_const(v) for v in (0, 1000, 2000, 3000, 4000)])  # (F, H, W)
    path = write_dicom(
        image_dataset(frames, modality="CT", view=None, window=(2000, 4000)), tmp_path / "mf.dcm"
    )
    image = load_upload([path], report_text=None, vitals=None, key=KEY, case_id="mf").image
    assert len(image.frames) == 5 and image.picked_index == 2
    assert all(f.dtype == np.float32 and f.shape == (16, 16) for f in image.frames)
    assert image.model_input == pytest.approx(np.full((16, 16), 0.5), abs=1e-3)


def test_frames_beyond_the_memory_budget_are_thinned(tmp_path: Path) -> None:
    frames = np.stack([_const(v) for v in range(10)])  # (F, H, W)
    path = write_dicom(image_dataset(frames, modality="CT", view=None), tmp_path / "mf.dcm")
    case = load_upload(
        [path],
        report_text=None,
        vitals=None,
        key=KEY,
        case_id="mf",
        limits=IntakeLimits(max_total_bytes=8000),
    )  # file ~5.8 kB, frames 10 kB
    assert len(case.image.frames) < 10
    assert any("evenly spaced" in w for w in case.warnings)
    assert case.image.frames[case.image.picked_index][0, 0] == 5


def test_rescale_is_applied(tmp_path: Path) -> None:
    path = write_dicom(
        image_dataset(_const(1024), modality="CT", view=None, rescale=(2, -1024)), tmp_path / "ct"
    )
    assert (
        load_upload([path], report_text=None, vitals=None, key=KEY, case_id="r").image.frames[0][
            0, 0
        ]
        == 1024
    )


@pytest.mark.parametrize(
    "name", ["SC_rgb_rle.dcm", "SC_ybr_full_422_uncompressed.dcm", "OBXXXX1A.dcm"]
)
def test_colour_images_become_rgb_and_luminance(name: str) -> None:
    found = get_testdata_file(name, download=False)
    if found is None:  # OBXXXX1A.dcm comes with pydicom-data, a test dependency
        if os.environ.get("MOE_APP_REQUIRE_ALL_TESTS") == "1":
            pytest.fail(f"{name} is missing: install the test dependencies (pydicom-data)")
        pytest.skip(f"{name} needs pydicom-data")
    path = Path(str(found))
    image = load_upload([path], report_text=None, vitals=None, key=KEY, case_id="c").image
    frame = image.frames[image.picked_index]
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert image.model_input.shape == frame.shape[:2]
    assert image.display().shape == frame.shape


def test_folder_with_report_and_vitals(tmp_path: Path) -> None:
    write_dicom(image_dataset(), tmp_path / "img" / "0001")
    (tmp_path / "report.txt").write_text(
        "Dr Who reports RLL consolidation on 01/02/2024.", encoding="utf-8"
    )
    (tmp_path / "vitals.json").write_text(
        json.dumps({"heart_rate_bpm": 112, "sex": "M", "temperature_c": 38.4})
    )
    (tmp_path / "thumbs.db").write_bytes(b"\x00\x01junk")
    case = load_case_folder(tmp_path, key=KEY)
    assert case.report == "Dr [NAME] reports RLL consolidation on [DATE]."
    assert case.vitals == {"heart_rate_bpm": 112.0, "temperature_c": 38.4}
    assert case.sex == "M"
    assert case.modalities == {"image": True, "report": True, "vitals": True}
    assert {"report", "vitals"} <= set(case.input_hashes)
    assert any("not DICOM" in w for w in case.warnings)


def test_case_without_dicom_gets_a_content_pseudonym(tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("Clear lungs.")
    first = load_case_folder(tmp_path, key=KEY)
    assert first.image is None and first.report == "Clear lungs."
    assert first.pseudonym == load_case_folder(tmp_path, key=KEY).pseudonym
    assert first.pseudonym == content_pseudonym(KEY, list(first.input_hashes.values()))
    (tmp_path / "report.txt").write_text("Clear lungs!")
    assert load_case_folder(tmp_path, key=KEY).pseudonym != first.pseudonym


def test_upload_with_only_typed_data() -> None:
    case = load_upload(
        [], report_text="Cough.", vitals={"spo2_percent": 91}, key=KEY, case_id="typed"
    )
    assert case.image is None and case.vitals == {"spo2_percent": 91.0}
    with pytest.raises(CaseError, match="empty"):
        load_upload([], report_text="  ", vitals={}, key=KEY, case_id="typed")


def test_two_patients_in_one_case_are_refused(tmp_path: Path) -> None:
    write_dicom(image_dataset(patient_id="A1"), tmp_path / "a")
    write_dicom(image_dataset(patient_id="B2", series_uid="1.2.9"), tmp_path / "b")
    with pytest.raises(CaseError, match="2 different patients"):
        load_case_folder(tmp_path, key=KEY)


def test_broken_file_beside_good_ones_is_skipped_with_a_warning(tmp_path: Path) -> None:
    good = write_dicom(image_dataset(), tmp_path / "good")
    (tmp_path / "broken").write_bytes(good.read_bytes()[:300])
    case = load_case_folder(tmp_path, key=KEY)
    assert case.image is not None
    assert any("could not be read" in w for w in case.warnings)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOE_APP_PSEUDONYM_KEY_FILE", str(tmp_path / "secret" / "key"))
    return tmp_path


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """A CLI with just the intake commands (moe_app.cli imports every stage: slow here)."""
    cli = typer.Typer()
    cli.callback()(lambda: None)  # a group, so the sub-command name is part of the call
    commands.register(cli)
    return cli


def test_intake_commands_are_registered_in_the_cli() -> None:
    cli_source = (Path(commands.__file__).parents[1] / "cli.py").read_text()
    assert '"moe_app.intake.commands"' in cli_source


def test_inspect_prints_a_phi_free_summary(cli_env: Path, app: typer.Typer) -> None:
    ds = image_dataset(patient_id="SECRET-ID-77")
    ds.PatientName = "Secret^Person"
    write_dicom(ds, cli_env / "case" / "x.dcm")
    result = CliRunner().invoke(app, ["inspect", str(cli_env / "case")])
    assert result.exit_code == 0, result.output
    assert "pseudonym: case-" in result.output and "picked series: CR series" in result.output
    assert "Explicit VR Little Endian" in result.output
    assert "SECRET" not in result.output and "Secret" not in result.output


def test_inspect_reports_case_errors_with_exit_code_2(cli_env: Path, app: typer.Typer) -> None:
    bad = cli_env / "bad.dcm"
    bad.write_bytes(b"")
    result = CliRunner().invoke(app, ["inspect", str(bad)])
    assert result.exit_code == 2
    assert "zero-byte" in result.output


def test_upload_of_a_cd_export_skips_non_images_with_a_warning(tmp_path: Path) -> None:
    image = write_dicom(image_dataset(), tmp_path / "IM1")
    no_pixels = image_dataset()
    del no_pixels.PixelData
    dicomdir_like = write_dicom(no_pixels, tmp_path / "DICOMDIR")
    readme = tmp_path / "README.TXT"
    readme.write_text("Viewer instructions")
    case = load_upload(
        [dicomdir_like, image, readme], report_text=None, vitals=None, key=KEY, case_id="cd"
    )
    assert case.image is not None
    assert any("2 file(s) could not be read" in w for w in case.warnings)


def test_voi_lut_sequence_drives_the_model_input(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = image_dataset(np.array([[0, 1, 2, 3]], dtype=np.uint16), view=None)
    item = Dataset()
    item.LUTDescriptor = [4, 0, 16]
    item.LUTData = np.array([0, 900, 1000, 1000], dtype="<u2").tobytes()  # strongly non-linear
    ds.VOILUTSequence = Sequence([item])
    path = write_dicom(ds, tmp_path / "voi")
    image = load_upload([path], report_text=None, vitals=None, key=KEY, case_id="v").image
    assert image.model_input[0].tolist() == pytest.approx([0.0, 0.9, 1.0, 1.0])
    assert "VOI LUT" in image.windows[0].name


def test_headerless_implicit_vr_file_is_found_by_content(tmp_path: Path) -> None:
    from pydicom.dataset import FileMetaDataset

    ds = image_dataset(_const(77))
    ds.file_meta = FileMetaDataset()  # empty: nothing of group 0002 is written
    raw = tmp_path / "case" / "0001.img"  # no preamble, no 'DICM', no file meta, odd name
    raw.parent.mkdir()
    ds.save_as(raw, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert raw.read_bytes()[:2] == b"\x08\x00"  # starts right at the (0008,xxxx) elements
    case = load_case_folder(raw.parent, key=KEY)
    assert case.image is not None and case.image.frames[0][0, 0] == 77
    assert case.image.transfer_syntax == "Implicit VR Little Endian"
