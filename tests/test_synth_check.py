"""`moe-app synth` command and the quick modality check (small N; the full figure comes from the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from moe_app.cli import app
from moe_app.labels import LABELS, VITAL_KEYS
from moe_app.synth.check import CheckResult
from moe_app.synth.dataset import generate_dataset, read_manifest
from moe_app.synth.features import image_features, vitals_features
from moe_app.synth.generate import SynthConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth-small")
    generate_dataset(out, 400, 1, SynthConfig(image_size=64), workers=2, progress=False)
    return out


def test_quick_check_needs_every_modality(small_set: Path, tmp_path: Path) -> None:
    report = tmp_path / "check.json"
    result = runner.invoke(app, ["synth", "--check", "--data", str(small_set), "--json", str(report), "--workers", "2"])
    assert result.exit_code in (0, 1), result.output  # 1 = outside the full-size bounds (small N)
    data = json.loads(report.read_text(encoding="utf-8"))
    acc = data["accuracy"]
    singles = [acc[m] for m in ("image", "report", "vitals")]
    assert acc["combined"] >= 0.85
    assert acc["combined"] >= max(singles) + 0.08, acc
    assert max(singles) <= 0.9, acc
    # the modalities are complementary where the design says so
    assert data["recall"]["image"]["pulmonary_embolism"] < data["recall"]["vitals"]["pulmonary_embolism"]
    assert data["recall"]["vitals"]["pneumothorax"] < data["recall"]["image"]["pneumothorax"]
    assert "combined" in result.output and "sens." in result.output  # the printed table


def test_cli_writes_a_set(tmp_path: Path) -> None:
    out = tmp_path / "set"
    args = ["synth", "--n", "5", "--seed", "2", "--out", str(out), "--image-size", "64", "--workers", "1", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = read_manifest(out / "manifest.csv")
    assert [r["case_id"] for r in rows] == [f"synth-2-{i:05d}" for i in range(5)]
    assert all(r["label"] in LABELS and r["split"] in ("train", "val", "test") for r in rows)
    assert all((out / r["case_id"]).is_dir() for r in rows)


@pytest.mark.parametrize(
    "args",
    [
        ["synth"],  # no --out, no --check
        ["synth", "--check", "--data", "/nonexistent-synth-dir"],
    ],
)
def test_cli_rejects_unusable_arguments(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2


def test_violations_name_the_failing_bound() -> None:
    recall = {m: dict.fromkeys(LABELS, 0.5) for m in ("image", "report", "vitals", "combined")}
    ok = CheckResult(10, {}, 5, {"image": 0.7, "report": 0.75, "vitals": 0.78, "combined": 0.96}, recall)
    bad = CheckResult(10, {}, 5, {"image": 0.85, "report": 0.7, "vitals": 0.7, "combined": 0.9}, recall)
    assert ok.violations() == []
    assert [v.split()[0] for v in bad.violations()] == ["image", "combined"]


@pytest.mark.parametrize("size", [64, 96, 512])
def test_image_features_have_fixed_length(size: int) -> None:
    film = np.random.default_rng(0).random((size, size)).astype(np.float32)
    assert image_features(film).shape == image_features(np.zeros((128, 128), np.float32) + 0.5).shape


def test_vitals_features_mark_missing_values() -> None:
    full = vitals_features({k: 1.0 for k in VITAL_KEYS} | {"sex": "F"})
    empty = vitals_features(None)
    assert full.shape == empty.shape == (2 * len(VITAL_KEYS) + 2,)
    assert empty[1::2][: len(VITAL_KEYS)].sum() == len(VITAL_KEYS)  # every indicator set
    assert full[1::2][: len(VITAL_KEYS)].sum() == 0
