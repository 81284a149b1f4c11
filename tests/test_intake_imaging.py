"""Pure pixel functions: windows (incl. degenerate ones), LUTs, inversion, presets, display."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from moe_app.intake import load_upload
from moe_app.intake.case import WindowPreset
from moe_app.intake.imaging import (
    apply_lut_table,
    apply_modality_lut,
    apply_window,
    frame_presets,
    invert,
    luminance,
    to_display,
)

sys.path.insert(0, str(Path(__file__).parent))
from conftest_intake import KEY, image_dataset, write_dicom  # noqa: E402


def test_modality_lut_rescales_to_float32() -> None:
    out = apply_modality_lut(np.array([0, 1000], dtype=np.uint16), slope=1.0, intercept=-1024.0)
    assert out.dtype == np.float32
    assert out.tolist() == [-1024.0, -24.0]


@pytest.mark.parametrize(
    ("function", "x", "expected"),
    [
        ("LINEAR", -160.0, 0.0),  # c - 0.5 - (w - 1) / 2
        ("LINEAR", 39.5, 0.5),  # c - 0.5
        ("LINEAR", 239.5, 1.0),  # c - 0.5 + (w - 1) / 2
        ("LINEAR_EXACT", -160.0, 0.0),  # c - w / 2
        ("LINEAR_EXACT", 40.0, 0.5),
        ("LINEAR_EXACT", 140.0, 0.75),
        ("LINEAR_EXACT", 240.0, 1.0),
        ("SIGMOID", 40.0, 0.5),
        ("SIGMOID", 140.0, 1.0 / (1.0 + math.exp(-1.0))),  # c + w / 4
        ("SIGMOID", -60.0, 1.0 / (1.0 + math.exp(1.0))),
    ],
)
def test_window_functions_match_dicom_formulas(function: str, x: float, expected: float) -> None:
    out = apply_window(np.array([x]), center=40.0, width=400.0, function=function)
    assert out.dtype == np.float32
    assert out[0] == pytest.approx(expected, abs=1e-6)


def test_linear_and_linear_exact_differ_by_half_a_unit() -> None:
    x = np.array([100.0])
    linear = apply_window(x, 40.0, 400.0, "LINEAR")[0]
    exact = apply_window(x, 40.0, 400.0, "LINEAR_EXACT")[0]
    assert linear == pytest.approx((100 - 39.5) / 399 + 0.5, abs=1e-6)
    assert exact == pytest.approx(0.65, abs=1e-6)


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("width", [0.0, -5.0])
def test_zero_or_negative_width_is_a_threshold(function: str, width: float) -> None:
    out = apply_window(
        np.array([-100.0, 39.0, 41.0, 1e6]), center=40.0, width=width, function=function
    )
    assert np.isfinite(out).all()
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_sigmoid_does_not_overflow_on_extreme_values() -> None:
    out = apply_window(np.array([-1e30, 1e30]), 0.0, 1.0, "SIGMOID")
    assert out.tolist() == [0.0, 1.0]


def test_unknown_window_function_is_refused() -> None:
    with pytest.raises(ValueError, match="VOI LUT function"):
        apply_window(np.zeros(2), 0.0, 1.0, "CUBIC")


def test_constant_image_gets_a_finite_mid_grey_default() -> None:
    frame = np.full((16, 16), 1234.0, dtype=np.float32)
    presets = frame_presets(frame)
    assert [p.name.split(" ")[0] for p in presets] == ["default", "lung", "mediastinum", "bone"]
    for preset in presets:
        shown = to_display(frame, preset)
        assert shown.dtype == np.uint8 and (shown == 128).all()


def test_hounsfield_presets_are_the_chest_windows() -> None:
    frame = np.linspace(-1000, 1000, 64 * 64, dtype=np.float32).reshape(64, 64)
    presets = frame_presets(frame, (WindowPreset("default", 40, 400),), hounsfield=True)
    assert [(p.name, p.center, p.width) for p in presets[1:]] == [
        ("lung", -600.0, 1500.0),
        ("mediastinum", 40.0, 400.0),
        ("bone", 480.0, 2500.0),
    ]
    assert presets[0].name == "default"


def test_projection_presets_follow_density_and_say_they_are_estimated() -> None:
    frame = np.linspace(0, 4095, 64 * 64, dtype=np.float32).reshape(64, 64)
    lung, mediastinum, bone = frame_presets(frame)[1:]
    assert all("estimated" in p.name for p in (lung, mediastinum, bone))
    assert lung.center < mediastinum.center < bone.center  # MONOCHROME2: dense = high
    lung1, _, bone1 = frame_presets(frame, monochrome1=True)[1:]
    assert lung1.center > bone1.center  # MONOCHROME1: dense = low stored values


def test_lut_table_clamps_and_scales() -> None:
    out = apply_lut_table(np.array([0, 10, 11, 12, 99]), np.array([100, 200, 300]), first_mapped=10)
    assert out.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_luminance_and_inversion() -> None:
    rgb = np.zeros((1, 3, 3), dtype=np.uint8)
    rgb[0, 0] = 255
    rgb[0, 1] = (255, 0, 0)
    assert luminance(rgb)[0].tolist() == pytest.approx([1.0, 0.299, 0.0], abs=1e-6)
    assert invert(np.array([0.0, 0.25, 1.0])).tolist() == [1.0, 0.75, 0.0]


def test_monochrome1_is_inverted_in_model_input_and_display(tmp_path: Path) -> None:
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8) * 64  # (H, W)
    window = (2000.0, 4000.0)
    loaded = {}
    for photometric in ("MONOCHROME1", "MONOCHROME2"):
        path = write_dicom(
            image_dataset(pixels, photometric=photometric, window=window),
            tmp_path / f"{photometric}.dcm",
        )
        loaded[photometric] = load_upload(
            [path], report_text=None, vitals=None, key=KEY, case_id="m"
        ).image
    mono1, mono2 = loaded["MONOCHROME1"], loaded["MONOCHROME2"]
    np.testing.assert_allclose(mono1.model_input, 1.0 - mono2.model_input, atol=1e-6)
    assert mono1.model_input[0, 0] > mono1.model_input[-1, -1]  # low stored value = bright
    np.testing.assert_array_equal(mono1.display().astype(int), 255 - mono2.display().astype(int))
    assert mono1.photometric == "MONOCHROME1"
