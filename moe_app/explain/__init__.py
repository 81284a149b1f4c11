"""Explanations a clinician can check: figures, heatmaps, attributions, what-if and summary.

Figures take the `Prediction` only (no model call); heatmaps and attributions re-use the
loaded model on the same case. Nothing here imports gradio: figures are plotly, images are
numpy arrays, highlighted text is a list of (text, score) pairs.

    from moe_app.explain import gate_figure, explain_case, overlay
    fig = gate_figure(pred)
    ex = explain_case(lm, case, pred)              # heatmaps, report words, vitals rows
    rgb = overlay(case.image.display(), ex.heatmaps["image_texture"], opacity=0.5)
"""

from __future__ import annotations

from moe_app.explain.bundle import Explanation, explain_case
from moe_app.explain.figures import (
    contributions_figure,
    gate_figure,
    opinions_figure,
    probabilities_figure,
)
from moe_app.explain.image import image_heatmaps, overlay
from moe_app.explain.summary import summary
from moe_app.explain.text import TokenAttributions, report_attributions, report_highlights
from moe_app.explain.vitals import VitalAttribution, vitals_attributions, vitals_figure
from moe_app.explain.whatif import what_if_figure, what_if_summary

__all__ = [
    "Explanation", "TokenAttributions", "VitalAttribution", "contributions_figure", "explain_case",
    "gate_figure", "image_heatmaps", "opinions_figure", "overlay", "probabilities_figure",
    "report_attributions", "report_highlights", "summary", "vitals_attributions", "vitals_figure",
    "what_if_figure", "what_if_summary",
]
