"""The second stage the UI runs after showing the diagnosis: heatmaps and attributions together."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from moe_app.explain.common import readers
from moe_app.explain.image import image_heatmaps
from moe_app.explain.text import TokenAttributions, highlights, report_attributions, word_scores
from moe_app.explain.vitals import VitalAttribution, vitals_attributions
from moe_app.intake.case import Case
from moe_app.model import LoadedModel
from moe_app.prediction import Prediction


@dataclass(frozen=True)
class Explanation:
    """Everything `explain_case` computed for one case and one diagnosis."""

    label: str  # the explained diagnosis
    heatmaps: dict[str, np.ndarray]  # image expert -> (H, W) in [0, 1]
    report: list[tuple[str, float | None]]  # gr.HighlightedText-ready words
    report_used: bool  # False when no selected expert read the report (shown for reference)
    report_delta: float | None  # IG completeness error (probability units), None without report
    report_max_abs: float  # the word score shown as +-1, in probability units (0 without report)
    vitals: list[VitalAttribution]
    vitals_used: bool  # False when no selected expert read the vitals (shown for reference)
    timings_ms: dict[str, float] = field(default_factory=dict)  # "heatmaps", "report", "vitals", "total"

    def extras(self) -> dict[str, object]:
        """What `summary(..., extras=...)` can mention."""
        return {"report_words": [(w, s) for w, s in self.report if s is not None] if self.report_used else [],
                "vitals": self.vitals if self.vitals_used else []}


def explain_case(model: LoadedModel, case: Case, pred: Prediction, label: str | None = None) -> Explanation:
    """Class-activation heatmaps (HiResCAM), report word attributions and vitals attributions for one case.

    Args:
        model: the loaded model (eval mode) that made `pred`.
        case: the case.
        pred: its prediction.
        label: the diagnosis to explain; default the predicted one.

    Returns:
        An `Explanation` with per-part timings.
    """
    label = label or pred.diagnosis
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    heat = image_heatmaps(model, case, pred, label)
    t1 = time.perf_counter()
    att: TokenAttributions | None = report_attributions(model, case, pred, label)
    t2 = time.perf_counter()
    rows = vitals_attributions(model, case, pred, label)
    t3 = time.perf_counter()
    times.update(heatmaps=1e3 * (t1 - t0), report=1e3 * (t2 - t1), vitals=1e3 * (t3 - t2), total=1e3 * (t3 - t0))
    words = [] if att is None else word_scores(att, case.report or "")
    return Explanation(
        label=label, heatmaps=heat, report=highlights(att, case.report or ""),
        report_used=bool(att and att.used), report_delta=None if att is None else att.delta,
        report_max_abs=max((abs(s) for *_, s in words), default=0.0),
        vitals=rows, vitals_used=bool(rows) and readers(model, pred, "vitals", "vitals").used, timings_ms=times,
    )

