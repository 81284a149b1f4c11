"""Mixture arrays -> Prediction: the pure part shared by both runtimes (no export needed)."""

from __future__ import annotations

import numpy as np
import pytest

from moe_app.labels import LABELS
from moe_app.model import AbstentionRule
from moe_app.runtime.bench import summary_rows
from moe_app.runtime.postprocess import mix, softmax, to_prediction
from moe_app.runtime.predictor import availability, drop_modalities
from tests.conftest_model import make_case

EXPERTS = ("image_texture", "image_shape", "report_findings", "report_keywords", "vitals_labs", "cross_modal")


def _mixture(weights_row: list[float], selected_row: list[int]):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, len(EXPERTS), len(LABELS))).astype(np.float32)  # (1, E, C)
    weights = np.array([weights_row], np.float32)  # (1, E)
    gate_probs = np.full((1, len(EXPERTS)), 1 / len(EXPERTS), np.float32)  # (1, E)
    return mix(gate_probs, weights, np.array([selected_row]), logits, weights > 0, temperature=1.5)


def _predict(m, rule=AbstentionRule()):
    return to_prediction(m, 0, case="c1", labels=LABELS, experts=EXPERTS,
                         modalities={"image": True, "report": True, "vitals": True}, rule=rule,
                         model_version="moe-x", runtime="onnxruntime:CPUExecutionProvider", latency_ms=12.345)


def test_softmax_with_temperature_is_stable_and_flatter():
    z = np.array([[1000.0, 999.0, 0.0]])
    p1, p2 = softmax(z), softmax(z, temperature=2.0)
    assert np.isfinite(p1).all() and p1.sum() == pytest.approx(1.0)
    assert p2[0, 0] < p1[0, 0]


def test_selected_experts_come_in_order_of_weight_and_the_rest_weigh_zero():
    p = _predict(_mixture([0.0, 0.3, 0.0, 0.0, 0.7, 0.0], [4, 1]))
    assert p.selected_experts == ["vitals_labs", "image_shape"]
    assert [e for e, w in p.gating.items() if w == 0.0] == ["image_texture", "report_findings", "report_keywords",
                                                            "cross_modal"]
    assert set(p.experts) == set(p.contributions) == {"vitals_labs", "image_shape"}
    assert p.experts["vitals_labs"].modality == "vitals"


def test_contributions_add_up_to_the_output_and_diagnosis_is_the_argmax():
    p = _predict(_mixture([0.55, 0.0, 0.45, 0.0, 0.0, 0.0], [0, 2]))
    for label in LABELS:
        assert sum(c[label] for c in p.contributions.values()) == pytest.approx(p.probabilities[label], abs=2e-6)
    assert p.diagnosis == max(p.probabilities, key=p.probabilities.get)
    assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_padding_slots_are_ignored():
    p = _predict(_mixture([0.0, 0.0, 0.0, 0.0, 1.0, 0.0], [4, -1]))
    assert p.selected_experts == ["vitals_labs"]


@pytest.mark.parametrize(("threshold", "uncertain"), [(0.0, False), (0.99, True)])
def test_the_abstention_rule_sets_uncertain_and_says_why(threshold, uncertain):
    p = _predict(_mixture([0.5, 0.0, 0.5, 0.0, 0.0, 0.0], [0, 2]), AbstentionRule(threshold=threshold))
    assert p.uncertain is uncertain
    assert bool(p.uncertainty_reason) is uncertain
    if uncertain:
        assert p.diagnosis in p.uncertainty_reason and "0.99" in p.uncertainty_reason


def test_json_form_keeps_the_contract_order():
    data = _predict(_mixture([0.5, 0.0, 0.5, 0.0, 0.0, 0.0], [0, 2])).to_json()
    assert list(data)[:12] == ["case", "diagnosis", "probabilities", "gating", "selected_experts", "experts",
                               "contributions", "modalities", "uncertain", "model_version", "runtime", "latency_ms"]


def test_availability_follows_the_required_modalities():
    presence = np.array([[1, 1, 1], [0, 1, 0], [1, 0, 0]], np.float32)  # (3, 3)
    got = availability(presence, EXPERTS)
    assert got.tolist() == [[True] * 6,
                            [False, False, True, True, False, True],
                            [True, True, False, False, False, True]]


def test_drop_modalities_removes_vitals_and_sex_together():
    case = make_case(0, "pneumonia", np.random.default_rng(0))
    reduced = drop_modalities(case, ["vitals", "image"])
    assert reduced.vitals is None and reduced.sex is None and reduced.image is None
    assert reduced.report == case.report


def test_bench_summary_marks_targets():
    r = {"intake_2048_ms": {"p50": 50.0}, "preprocess_2048_ms": {"p50": 5.0},
         "gate_ms": {"onnx": {"p50": 0.1}, "torch": {"p50": 0.3}},
         "expert_ms": {"vitals_labs": {"onnx": {"p50": 0.1}, "torch": {"p50": 0.2}}},
         "inference_1_ms": {"onnx": {"p50": 2.0}, "torch": {"p50": 3.0}},
         "e2e_ms": {"onnx": {"p50": 120.0, "p95": 200.0}, "torch": {"p50": 130.0, "p95": 210.0}},
         "throughput_64_cases_per_s": {"onnx": 500.0, "torch": 100.0},
         "expert_stage_ms": {"batch_1": {"top_k": {"p50": 1.0}, "dense": {"p50": 3.0}},
                             "batch_64": {"top_k": {"p50": 4.0}, "dense": {"p50": 10.0}}},
         "parameters": {"active_per_case_mean": 1e5, "experts_total": 4e5},
         "predict_process": {"peak_rss_mb": 2000.0}}
    met = {row["name"]: row.get("met") for row in summary_rows(r)}
    assert met["ONNX Runtime speed-up over the faster torch eager, 1 case"] is False  # 1.5x < 2x
    assert met["End-to-end 1 sample case, ONNX p50 / p95"] is True
    assert met["Expert stage, batch 64: top-k / dense"] is True
    assert met["Peak RSS of `moe-app predict` (ONNX)"] is False
