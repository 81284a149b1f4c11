"""Synthetic generator: determinism, modality presence, vitals/report sanity, manifest ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from moe_app.labels import LABELS, SEX_KEY, VITALS
from moe_app.synth.dataset import generate_dataset, read_manifest
from moe_app.synth.findings import Findings
from moe_app.synth.generate import SynthConfig, generate_case, split_of, write_case
from moe_app.synth.vitals import sample_vitals

TINY = SynthConfig(image_size=32)  # presence/labels/reports do not depend on the film size


@pytest.fixture(scope="module")
def tiny_cases() -> list:
    return [generate_case(i, 7, TINY) for i in range(350)]


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    cfg = SynthConfig(image_size=96)
    for index in range(4):
        a = write_case(generate_case(index, 11, cfg), tmp_path / "a")
        b = write_case(generate_case(index, 11, cfg), tmp_path / "b")
        names = sorted(p.name for p in a.iterdir())
        assert names == sorted(p.name for p in b.iterdir())
        for name in names:
            assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs between runs"


def test_different_seed_gives_different_cases() -> None:
    a = generate_case(0, 1, TINY)
    b = generate_case(0, 2, TINY)
    assert (a.report, a.vitals, a.identity) != (b.report, b.vitals, b.identity)


def test_output_does_not_depend_on_worker_count(tmp_path: Path) -> None:
    cfg = SynthConfig(image_size=64)
    generate_dataset(tmp_path / "one", 6, 3, cfg, workers=1, progress=False)
    generate_dataset(tmp_path / "two", 6, 3, cfg, workers=2, progress=False)
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file())
    assert one == two and len(one) > 6
    for rel in one:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), str(rel)


def test_every_case_keeps_at_least_one_modality(tiny_cases: list) -> None:
    for case in tiny_cases:
        assert case.film is not None or case.report is not None or case.vitals is not None


@pytest.mark.parametrize("attr", ["film", "report", "vitals"])
def test_missing_fraction_near_configured(tiny_cases: list, attr: str) -> None:
    missing = np.mean([getattr(c, attr) is None for c in tiny_cases])
    assert 0.05 <= missing <= 0.16, f"{attr} missing in {missing:.3f} of cases, configured 0.10"


def test_labels_balanced_and_some_ambiguous(tiny_cases: list) -> None:
    counts = {lab: sum(c.label == lab for c in tiny_cases) for lab in LABELS}
    assert all(45 <= n <= 95 for n in counts.values()), counts
    ambiguous = [c for c in tiny_cases if c.ambiguous]
    assert 0 < len(ambiguous) <= 25
    assert all(c.mimic not in (None, c.label) for c in ambiguous)


def test_vitals_respect_the_contract(tiny_cases: list) -> None:
    specs = {v.key: v for v in VITALS}
    for case in tiny_cases:
        assert case.sex in ("F", "M")
        for key, value in (case.vitals or {}).items():
            assert specs[key].low <= value <= specs[key].high, (key, value)


def _means(label: str, key: str, n: int = 400) -> float:
    rng = np.random.default_rng(0)
    values = []
    for _ in range(n):
        v, _sex = sample_vitals(label, rng, float(rng.random()))
        if key in v:
            values.append(v[key])
    return float(np.mean(values))


@pytest.mark.parametrize(
    ("key", "higher", "lower"),
    [
        ("heart_rate_bpm", "pulmonary_embolism", "normal"),
        ("d_dimer_ng_per_ml", "pulmonary_embolism", "normal"),
        ("bnp_pg_per_ml", "heart_failure", "normal"),
        ("bnp_pg_per_ml", "heart_failure", "pneumonia"),
        ("temperature_c", "pneumonia", "normal"),
        ("wbc_10e9_per_l", "pneumonia", "pneumothorax"),
        ("respiratory_rate_per_min", "pulmonary_embolism", "normal"),
        ("spo2_percent", "normal", "pulmonary_embolism"),
        ("age_years", "heart_failure", "pneumothorax"),
    ],
)
def test_vitals_distributions_are_clinically_ordered(key: str, higher: str, lower: str) -> None:
    assert _means(higher, key) > _means(lower, key)


def test_fever_comes_with_tachycardia() -> None:
    rng = np.random.default_rng(1)
    rows = [sample_vitals("pneumonia", rng, 0.5)[0] for _ in range(600)]
    rows = [r for r in rows if "temperature_c" in r and "heart_rate_bpm" in r]
    temp = np.array([r["temperature_c"] for r in rows])
    hr = np.array([r["heart_rate_bpm"] for r in rows])
    assert np.corrcoef(temp, hr)[0, 1] > 0.2


def test_pneumothorax_vitals_look_like_normal() -> None:
    for key in ("heart_rate_bpm", "spo2_percent", "temperature_c"):
        assert abs(_means("pneumothorax", key) - _means("normal", key)) < 0.06 * _means("normal", key)


def test_vitals_json_is_the_intake_format(tmp_path: Path) -> None:
    case = next(c for c in (generate_case(i, 5, TINY) for i in range(50)) if c.vitals)
    folder = write_case(case, tmp_path)
    data = json.loads((folder / "vitals.json").read_text(encoding="utf-8"))
    assert data[SEX_KEY] == case.sex
    assert set(data) - {SEX_KEY} == set(case.vitals)


def test_reports_vary_in_language(tiny_cases: list) -> None:
    reports = [c.report for c in tiny_cases if c.report]
    joined = "\n".join(reports)
    for token in ("oedema", "edema", "PTX", "CXR", "SOB", "no pneumothorax", "cannot", "r/o", "w/"):
        assert token.lower() in joined.lower(), f"{token!r} never used"
    assert len(set(reports)) == len(reports), "reports repeat verbatim"
    first_lines = {r.splitlines()[0] for r in reports}
    assert len(first_lines) > 10
    with_phi = [c for c in tiny_cases if c.report and c.identity.family_name in c.report]
    assert 0.05 * len(reports) < len(with_phi) < 0.5 * len(reports)


def test_report_reads_what_the_film_shows(tiny_cases: list) -> None:
    ptx = [c for c in tiny_cases if c.report and c.findings.ptx_visible and not c.ambiguous]
    named = [c for c in ptx if "pneumothorax" in c.report.lower() or "ptx" in c.report.lower()]
    assert len(named) / len(ptx) > 0.6  # some are hedged without naming it, some small ones missed


def test_split_rule_is_stable_and_70_15_15() -> None:
    ids = [f"synth-0-{i:05d}" for i in range(4000)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert abs(share["train"] - 0.7) < 0.03 and abs(share["val"] - 0.15) < 0.03


def test_manifest_records_pneumothorax_side_and_location(tmp_path: Path) -> None:
    cfg = SynthConfig(image_size=64, class_weights=(0.0, 0.0, 0.0, 1.0, 0.0), p_missing_image=0.0, p_ambiguous=0.0)
    rows = read_manifest(generate_dataset(tmp_path, 12, 4, cfg, workers=1, progress=False))
    assert {r["ptx_side"] for r in rows} == {"left", "right"}
    for r in rows:
        x0, x1, line = float(r["ptx_x0"]), float(r["ptx_x1"]), float(r["pleural_line_x"])
        assert x0 <= line <= x1
        # PA/AP display: the patient's right is on the image left
        if r["ptx_side"] == "right":
            assert x1 < 0.55
        else:
            assert x0 > 0.45


def test_normal_film_has_no_findings() -> None:
    cases = [generate_case(i, 9, TINY) for i in range(60)]
    normals = [c for c in cases if c.label == "normal" and not c.ambiguous]
    assert normals and any(c.findings == Findings() for c in normals)
    assert all(c.findings.ptx_side is None and not c.findings.consolidations for c in normals)
