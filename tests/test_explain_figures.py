"""Figures, summaries and overlays read a Prediction faithfully (no model needed)."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import pytest

from moe_app.errors import ModelError
from moe_app.explain import (
    contributions_figure,
    gate_figure,
    opinions_figure,
    overlay,
    probabilities_figure,
    summary,
    what_if_figure,
    what_if_summary,
)
from moe_app.explain.style import label_title, rounded_parts
from moe_app.labels import LABELS
from moe_app.model import EXPERTS
from moe_app.prediction import ExpertOpinion, Prediction

NAMES = tuple(EXPERTS)


def make_prediction(weights: dict[str, float], own: dict[str, list[float]], modalities: dict[str, bool],
                    gate_probs: dict[str, float] | None = None, uncertain: bool = False) -> Prediction:
    """A prediction built exactly as the model builds one: p = sum_e w_e * p_e."""
    selected = sorted(weights, key=lambda n: -weights[n])
    contrib = {n: {lb: weights[n] * p for lb, p in zip(LABELS, own[n], strict=True)} for n in selected}
    probs = {lb: math.fsum(contrib[n][lb] for n in selected) for lb in LABELS}
    return Prediction(
        case="c1", diagnosis=max(probs, key=lambda lb: probs[lb]), probabilities=probs,
        gating={n: weights.get(n, 0.0) for n in NAMES}, selected_experts=selected,
        experts={n: ExpertOpinion(EXPERTS[n].modality, dict(zip(LABELS, own[n], strict=True))) for n in selected},
        contributions=contrib, modalities=modalities, uncertain=uncertain, model_version="moe-test",
        runtime="torch:cpu", latency_ms=1.0, gate_probabilities=gate_probs or {},
        uncertainty_reason="top probability 0.41 is below 0.50" if uncertain else "",
    )


@pytest.fixture
def pred_no_report() -> Prediction:
    gate = {"image_texture": 0.5, "image_shape": 0.1, "report_findings": 0.0, "report_keywords": 0.0,
            "vitals_labs": 0.12, "cross_modal": 0.28}
    return make_prediction(
        {"image_texture": 0.641, "cross_modal": 0.359},
        {"image_texture": [0.02, 0.03, 0.01, 0.91, 0.03], "cross_modal": [0.10, 0.05, 0.05, 0.6, 0.2]},
        {"image": True, "report": False, "vitals": True}, gate)


def _bars(fig: go.Figure) -> list[go.Bar]:
    return [t for t in fig.data if isinstance(t, go.Bar)]


def test_probabilities_figure_highlights_the_diagnosis_and_flags_uncertainty(pred_no_report: Prediction) -> None:
    fig = probabilities_figure(pred_no_report)
    (bar,) = _bars(fig)
    colours = dict(zip(bar.y, bar.marker.color, strict=True))
    assert len(set(colours.values())) == 2 and colours["Pneumothorax"] != colours["Normal"]
    assert sorted(bar.x) == sorted(pred_no_report.probabilities.values())
    assert "UNCERTAIN" not in fig.layout.title.text
    flagged = probabilities_figure(replace(pred_no_report, uncertain=True, uncertainty_reason="below 0.50"))
    assert "UNCERTAIN" in flagged.layout.title.text and "below 0.50" in flagged.layout.title.text


def test_gate_figure_shows_weights_greys_unused_and_marks_missing(pred_no_report: Prediction) -> None:
    fig = gate_figure(pred_no_report)
    shown = {y: x for bar in _bars(fig) for x, y in zip(bar.x, bar.y, strict=True)}
    assert shown == {"Imaging: texture": 0.641, "Cross-modal": 0.359}
    unused = next(t for t in fig.data if t.name == "not used")
    status = dict(zip(unused.y, unused.text, strict=True))
    assert status["Report: findings"] == status["Report: key phrases"] == "0 (modality missing)"
    assert status["Imaging: shape"] == "0 (not selected)" and status["Vitals and labs"] == "0 (not selected)"
    assert all(x == 0 for x in unused.x)
    before = dict(zip(unused.y, [c[0] for c in unused.customdata], strict=True))
    assert before["Imaging: shape"] == pytest.approx(0.1)  # the pre-top-k gate probability, in hover
    order = list(fig.layout.yaxis.categoryarray)[::-1]  # grouped by modality, image first
    assert order[:2] == ["Imaging: texture", "Imaging: shape"] and order[-1] == "Cross-modal"


def test_opinions_figure_marks_on_demand_opinions_as_not_used(pred_no_report: Prediction) -> None:
    extra = {"vitals_labs": dict(zip(LABELS, [0.1, 0.1, 0.1, 0.2, 0.5], strict=True))}
    (heat,) = opinions_figure(pred_no_report, extra).data
    rows = dict(zip(heat.y, heat.z, strict=True))
    assert rows["Vitals and labs (not used)"][4] == 0.5
    assert rows["Imaging: texture (weight 0.64)"][3] == 0.91
    assert len(rows) == 3


@pytest.mark.parametrize("label", [None, *LABELS])
def test_contribution_parts_add_up_to_the_displayed_probability(pred_no_report: Prediction, label: str | None) -> None:
    fig = contributions_figure(pred_no_report, label)
    bars = _bars(fig)
    assert [b.name for b in bars] == ["Imaging: texture", "Cross-modal"]
    by_title = {label_title(k): k for k in LABELS}
    for i, title in enumerate(bars[0].y):
        lb = by_title[title]
        raw = sum(b.x[i] for b in bars)
        assert raw == pytest.approx(pred_no_report.probabilities[lb], abs=1e-6)
        shown = sum(float(b.text[i]) for b in bars)
        total = next(a for a in fig.layout.annotations if a.y == title).text
        assert f"{shown:.3f}" in total  # rounded parts add up exactly to the rounded total
    assert f"{pred_no_report.probabilities[label or pred_no_report.diagnosis]:.3f}" in fig.layout.title.text


@pytest.mark.parametrize("parts", [[0.4124, 0.3014], [1 / 3] * 3, [0.0005] * 7, [0.9999996, 0.0], [0.25, 0.25, 0.5]])
def test_rounded_parts_sum_to_rounded_total(parts: list[float]) -> None:
    shown = rounded_parts(parts, 3)
    assert round(sum(shown), 3) == round(sum(parts), 3)
    assert all(abs(s - p) < 1.5e-3 for s, p in zip(shown, parts, strict=True))


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+\.\d+", text))


def test_summary_says_only_what_the_numbers_say(pred_no_report: Prediction) -> None:
    text = summary(pred_no_report)
    allowed = {f"{v:.2f}" for v in pred_no_report.probabilities.values()}
    allowed |= {f"{v:.2f}" for v in pred_no_report.gating.values()}
    for op in pred_no_report.experts.values():
        allowed |= {f"{v:.2f}" for v in op.probabilities.values()}
    for c in pred_no_report.contributions.values():
        allowed |= {f"{v:.2f}" for v in c.values()}
    assert _numbers(text) <= allowed
    for must in ("Pneumothorax", "Imaging: texture (weight 0.64)", "Cross-modal (weight 0.36)", "report",
                 "Report: findings"):
        assert must in text
    assert "uncertain" not in text
    assert "uncertain" in summary(replace(pred_no_report, uncertain=True))
    assert "\n" not in text


def test_summary_mentions_disagreement_and_on_demand_opinions(pred_no_report: Prediction) -> None:
    own = {"image_texture": [0.7, 0.1, 0.1, 0.05, 0.05], "vitals_labs": [0.1, 0.1, 0.1, 0.1, 0.6]}
    pred = make_prediction({"image_texture": 0.55, "vitals_labs": 0.45}, own,
                           {"image": True, "report": True, "vitals": True})
    text = summary(pred, extras={"opinions": {"report_findings": dict(zip(LABELS, [0.9, 0, 0, 0.1, 0], strict=True))}})
    assert "disagree" in text and "Pulmonary embolism" in text
    assert "Report: findings (not used for the answer) would give Normal 0.90" in text
    assert "All three inputs" in text


def test_what_if_figure_and_summary_describe_the_rerun(pred_no_report: Prediction) -> None:
    gate_after = {"image_texture": 0.0, "image_shape": 0.3, "vitals_labs": 0.2, "cross_modal": 0.5}
    after = make_prediction({"cross_modal": 0.62, "image_shape": 0.38},
                            {"cross_modal": [0.5, 0.1, 0.1, 0.2, 0.1], "image_shape": [0.6, 0.1, 0.1, 0.1, 0.1]},
                            pred_no_report.modalities, gate_after)
    text = what_if_summary(pred_no_report, after)
    assert "Removed: Imaging: texture." in text
    assert "changes from Pneumothorax" in text and "to Normal" in text
    fig = what_if_figure(pred_no_report, after)
    assert "Imaging: texture (removed)" in fig.data[2].y
    after_probs = dict(zip(fig.data[1].y, fig.data[1].x, strict=True))
    assert after_probs["Normal"] == pytest.approx(after.probabilities["normal"])


def test_overlay_blends_by_heat_and_keeps_size() -> None:
    display = np.full((40, 60), 100, np.uint8)
    heat = np.zeros((10, 15), np.float32)
    heat[:, 10:] = 1.0
    out = overlay(display, heat, opacity=0.6)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    assert (out[:, :20] == 100).all()  # no evidence: the film unchanged
    assert not (out[:, -10:] == 100).all()
    assert (overlay(display, heat, 0.0) == 100).all()
    rgb = np.stack([display] * 3, axis=2)
    assert np.array_equal(overlay(rgb, heat, 0.6), out)
    assert np.isfinite(overlay(display, np.full((5, 5), np.nan, np.float32), 0.5)).all()


@pytest.mark.parametrize("display,heat", [(np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4))),
                                          (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3)))])
def test_overlay_rejects_bad_shapes(display: np.ndarray, heat: np.ndarray) -> None:
    with pytest.raises(ModelError):
        overlay(display, heat, 0.5)
