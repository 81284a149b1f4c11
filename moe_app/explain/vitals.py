"""Vitals and labs explanations: Integrated Gradients per field, next to value and reference range.

The model's vitals vector is (normalised values, missing indicators, sex one-hot). The
baseline is a "textbook normal" patient: every field measured at the middle of its reference
range, sex not recorded. A field's attribution is the sum over its value and its missing
indicator, so a field that was not measured shows how much "not measured" itself moved the
vote. Completeness holds: the rows add up to target(case) - target(normal patient).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from captum.attr import IntegratedGradients

from moe_app.explain.common import case_inputs, class_index, private_model, readers, require_eval
from moe_app.explain.style import FONT, GREY, NEGATIVE, POSITIVE, label_title
from moe_app.intake.case import Case
from moe_app.labels import SEX_KEY, VITALS
from moe_app.model import LoadedModel
from moe_app.model.features import vitals_vector
from moe_app.prediction import Prediction

N_STEPS = 16  # Gauss-Legendre points: the vitals experts are smooth MLPs, |delta| ~1e-4


@dataclass(frozen=True)
class VitalAttribution:
    """One vitals/labs field with its value, reference range and attribution."""

    field: str  # key of the intake contract, e.g. "heart_rate_bpm", or "sex"
    title: str  # e.g. "Heart rate"
    value: float | str | None  # as entered; None = not measured / not recorded
    unit: str
    ref_low: float | None
    ref_high: float | None
    attribution: float  # change of the explained vote, in probability units (+ raises it)
    missing: bool

    @property
    def value_text(self) -> str:
        if self.value is None:
            return "not measured" if self.field != SEX_KEY else "not recorded"
        if isinstance(self.value, str):
            return self.value
        return f"{self.value:g} {self.unit}".strip()

    @property
    def range_text(self) -> str:
        if self.ref_low is None or self.ref_high is None:
            return ""
        return f"{self.ref_low:g}\u2013{self.ref_high:g} {self.unit}".strip()

    @property
    def outside_range(self) -> bool:
        if not isinstance(self.value, float | int) or self.ref_low is None or self.ref_high is None:
            return False
        return not self.ref_low <= float(self.value) <= self.ref_high


def normal_baseline() -> torch.Tensor:
    """(1, 2V + 2) vitals vector of a patient with every field mid-reference, sex unknown."""
    mid = {s.key: (s.ref_low + s.ref_high) / 2.0 for s in VITALS}
    return torch.from_numpy(vitals_vector(mid, None)).unsqueeze(0)  # (1, 2V + 2)


def vitals_ig(model: LoadedModel, case: Case, pred: Prediction, label: str | None = None,
              n_steps: int = N_STEPS) -> tuple[np.ndarray, float, float, float, bool]:
    """IG of the weighted vitals vote: ((2V + 2,) attributions, output, baseline output, delta, used)."""
    require_eval(model)
    with private_model(model) as own:
        return _vitals_ig(own, case, pred, label, n_steps)


def _vitals_ig(model: LoadedModel, case: Case, pred: Prediction, label: str | None,
               n_steps: int) -> tuple[np.ndarray, float, float, float, bool]:
    c = class_index(model, label or pred.diagnosis)
    who = readers(model, pred, "vitals", "vitals")
    x = case_inputs(model, case)
    fields_of = {n: tuple(f for f in model.model.experts[n].input_names if f != "vitals") for n in who.weights}

    def target(vitals: torch.Tensor) -> torch.Tensor:
        total = vitals.new_zeros(vitals.shape[0])  # (B,)
        for name, w in who.weights.items():
            rest = {f: getattr(x, f).expand(vitals.shape[0], *getattr(x, f).shape[1:]) for f in fields_of[name]}
            logits = model.model.experts[name](vitals=vitals, **rest)  # (B, C)
            total = total + w * model.model.expert_probs(logits)[:, c]
        return total

    base = normal_baseline()
    with torch.enable_grad():
        attr = IntegratedGradients(target).attribute(x.vitals, baselines=base, n_steps=n_steps,
                                                     method="gausslegendre")
    with torch.no_grad():
        both = target(torch.cat([x.vitals, base]))  # (2,) both end points in one batch
    scores = attr.detach().double()[0].numpy()  # (2V + 2,)
    out, base_out = float(both[0]), float(both[1])
    return scores, out, base_out, float(scores.sum() - (out - base_out)), who.used


def vitals_attributions(model: LoadedModel, case: Case, pred: Prediction,
                        label: str | None = None) -> list[VitalAttribution]:
    """Per-field attributions of the vitals-reading experts for the predicted diagnosis.

    Args:
        model: the loaded model (eval mode).
        case: the case the prediction was made for.
        pred: its prediction.
        label: the diagnosis to explain; default the predicted one.

    Returns:
        One row per field of `labels.VITALS` plus one for sex, in that order; empty when the
        case has no vitals or labs.
    """
    if not case.modalities["vitals"] or not any("vitals" in model.model.experts[n].input_names
                                                for n in model.cfg.experts):
        return []
    attr, *_ = vitals_ig(model, case, pred, label)
    v = len(VITALS)
    given = case.vitals or {}
    rows = []
    for i, spec in enumerate(VITALS):
        raw = given.get(spec.key)
        missing = raw is None or not math.isfinite(float(raw))
        rows.append(VitalAttribution(
            field=spec.key, title=spec.title, value=None if missing else float(raw), unit=spec.unit,
            ref_low=spec.ref_low, ref_high=spec.ref_high, attribution=float(attr[i] + attr[v + i]),
            missing=missing,
        ))
    rows.append(VitalAttribution(field=SEX_KEY, title="Sex", value=case.sex, unit="", ref_low=None,
                                 ref_high=None, attribution=float(attr[2 * v] + attr[2 * v + 1]),
                                 missing=case.sex is None))
    return rows


def vitals_figure(rows: list[VitalAttribution], label: str | None = None) -> go.Figure:
    """Horizontal bars of the field attributions, each labelled with value and reference range.

    Args:
        rows: output of `vitals_attributions`.
        label: the explained diagnosis (for the title).
    """
    rows = rows[::-1]
    names = [f"{r.title}: {r.value_text}" + (f" (ref {r.range_text})" if r.range_text else "")
             + (" \u26a0" if r.outside_range else "") for r in rows]
    colours = [GREY if r.missing else (POSITIVE if r.attribution > 0 else NEGATIVE) for r in rows]
    fig = go.Figure(go.Bar(
        x=[r.attribution for r in rows], y=names, orientation="h", marker_color=colours,
        text=[f"{r.attribution:+.3f}" for r in rows], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}<br>attribution %{x:+.4f}<extra></extra>",
    ))
    what = f"P({label_title(label)})" if label else "the diagnosis"
    fig.update_layout(
        title={"text": f"Vitals and labs: how each value moved {what}<br><sup>against a patient with every "
                       "value mid-reference; grey = not measured; \u26a0 = outside reference range</sup>",
               "x": 0.0},
        font=FONT, height=120 + 30 * len(rows), plot_bgcolor="white",
        margin={"l": 10, "r": 40, "t": 70, "b": 40},
    )
    fig.update_xaxes(title="attribution (probability)", zeroline=True, zerolinecolor="#616161",
                     gridcolor="#EEEEEE")
    return fig
