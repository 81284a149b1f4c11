"""The heatmap-side measurement: side convention, share arithmetic, and the CLI end to end."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from moe_app.cli import app
from moe_app.errors import ConfigError
from moe_app.explain.check_heatmaps import hemithorax_share, image_half_of, measure
from moe_app.model import save_model
from moe_app.synth.dataset import generate_dataset
from moe_app.synth.generate import SynthConfig, generate_case
from tests import conftest_explain as fx
from tests.conftest import skip_or_fail


@pytest.mark.parametrize("patient_side,image_half", [("right", "left"), ("left", "right")])
def test_patient_side_maps_to_the_opposite_image_half_on_a_pa_film(patient_side: str, image_half: str) -> None:
    assert image_half_of(patient_side) == image_half


@pytest.mark.parametrize("bad", ["", "Right", "both", "l"])
def test_unknown_sides_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigError):
        image_half_of(bad)


def test_the_generator_draws_the_patients_right_on_the_image_left() -> None:
    """Guards the convention the measurement relies on against a change in the generator."""
    cfg = SynthConfig(image_size=64, class_weights=(0.0, 0.0, 0.0, 1.0, 0.0), p_missing_image=0.0, p_subtle=0.0)
    seen = set()
    for i in range(12):
        case = generate_case(i, 7, cfg)
        if case.film is None or case.film.ptx_bbox is None:
            continue
        x0, _, x1, _ = case.film.ptx_bbox
        assert ((x0 + x1) / 2 < 0.5) == (image_half_of(case.findings.ptx_side) == "left")
        seen.add(case.findings.ptx_side)
    assert seen == {"left", "right"}


def test_hemithorax_share() -> None:
    heat = np.zeros((4, 10), np.float32)
    heat[:, :5] = 3.0
    heat[:, 5:] = 1.0
    assert hemithorax_share(heat, "left") == pytest.approx(0.75)
    assert hemithorax_share(heat, "right") == pytest.approx(0.25)
    assert np.isnan(hemithorax_share(np.zeros((4, 4)), "left"))


def test_check_heatmaps_command_measures_a_set(tmp_path: Path) -> None:
    data = tmp_path / "set"
    cfg = SynthConfig(image_size=64, class_weights=(0.0, 0.0, 0.0, 1.0, 0.0), p_missing_image=0.0)
    generate_dataset(data, 6, seed=3, cfg=cfg, workers=1, progress=False)
    lm = fx.trained_model()
    model_dir = lm.model_dir if (lm.model_dir / "model.safetensors").is_file() else tmp_path / "model"
    if model_dir == tmp_path / "model":
        save_model(lm.model, lm.tokenizer, model_dir, lm.abstention)
    result = CliRunner().invoke(app, ["check-heatmaps", "--data", str(data), "--model", str(model_dir),
                                      "--split", "train", "--target", "pneumothorax", "--cross-modal"])
    assert result.exit_code == 0, result.output
    n = int(re.search(r"(\d+) of (\d+) pneumothorax", result.output).group(2))
    assert n >= 1
    assert "side convention mismatches (manifest side vs air-rim box): 0" in result.output
    share = re.search(r"hemithorax: ([0-9.]+|nan)", result.output).group(1)
    assert share == "nan" or 0.0 <= float(share) <= 1.0


def test_check_heatmaps_command_explains_a_missing_manifest(tmp_path: Path) -> None:
    lm = fx.trained_model()
    model_dir = tmp_path / "model"
    save_model(lm.model, lm.tokenizer, model_dir, lm.abstention)
    result = CliRunner().invoke(app, ["check-heatmaps", "--data", str(tmp_path), "--model", str(model_dir)])
    assert result.exit_code == 2 and "no manifest.csv" in result.output


@pytest.mark.slow
def test_the_shipped_models_heatmaps_fall_on_the_pneumothorax_side(tmp_path: Path) -> None:
    """The issue's target (>= 0.7 of the heatmap mass on the pneumothorax hemithorax) on 40 fresh films.

    The set seed (2026) is not the training set's, so the model has never seen these cases. The
    full test-split figure comes from `moe-app check-heatmaps` (README). This is the same
    measurement on a set small enough for CI. The third checkpoint scores 0.776 here (0.76 and 0.81
    with set seeds 7 and 8); the second scored 0.684.
    """
    if not (fx.SHIPPED / "model.safetensors").is_file():
        skip_or_fail("no shipped checkpoint in assets/model")
    data = tmp_path / "ptx"
    cfg = SynthConfig(class_weights=(0.0, 0.0, 0.0, 1.0, 0.0), p_missing_image=0.0, split=(0.0, 0.0))
    generate_dataset(data, 40, seed=2026, cfg=cfg, workers=1, progress=False)
    result = measure(fx.SHIPPED, data, split="test")
    assert result.n_pneumothorax == 40 and result.n_measured >= 30
    assert result.convention_mismatches == 0
    assert result.mean_share >= 0.7, result.report()
