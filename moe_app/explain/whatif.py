"""What-if: compare the prediction with one where experts or modalities were removed.

Both predictions come from real model runs (the runtime's `what_if` re-runs the model with
the experts masked exactly as an absent modality masks them); this module only shows the
difference: how the gate re-routed and how the probabilities moved.
"""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from moe_app.explain.style import (
    FONT,
    GREY,
    HIGHLIGHT,
    ExpertInfo,
    expert_available,
    expert_title,
    fmt,
    label_title,
    ordered_experts,
)
from moe_app.model.experts import EXPERTS
from moe_app.prediction import Prediction

BEFORE = "#9E9E9E"


def _available(pred: Prediction, name: str, experts: Mapping[str, ExpertInfo]) -> bool:
    if pred.gate_probabilities:  # masked experts get gate probability exactly 0
        return pred.gate_probabilities.get(name, 0.0) > 0 or name in pred.selected_experts
    return expert_available(name, experts, pred.modalities)


def removed_experts(before: Prediction, after: Prediction,
                    experts: Mapping[str, ExpertInfo] = EXPERTS) -> list[str]:
    """Experts available before but not after (masked, or their modality removed)."""
    return [n for n in before.gating if _available(before, n, experts) and not _available(after, n, experts)]


def what_if_figure(before: Prediction, after: Prediction,
                   experts: Mapping[str, ExpertInfo] = EXPERTS) -> go.Figure:
    """Side by side: probabilities before/after, and gate weights before/after.

    Args:
        before: the original prediction.
        after: the prediction of the re-run with experts or modalities removed.
        experts: expert specs for titles.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Probabilities", "Gate weights"),
                        horizontal_spacing=0.22)
    labels = list(before.probabilities)[::-1]
    lt = [label_title(lb) for lb in labels]
    fig.add_trace(go.Bar(x=[before.probabilities[lb] for lb in labels], y=lt, orientation="h", name="before",
                         marker_color=BEFORE, legendgroup="before",
                         hovertemplate="%{y} before: %{x:.3f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=[after.probabilities.get(lb, 0.0) for lb in labels], y=lt, orientation="h",
                         name="after", marker_color=HIGHLIGHT, legendgroup="after",
                         text=[f"{after.probabilities.get(lb, 0.0) - before.probabilities[lb]:+.2f}" for lb in labels],
                         textposition="outside", cliponaxis=False,
                         hovertemplate="%{y} after: %{x:.3f}<extra></extra>"), row=1, col=1)
    gone = set(removed_experts(before, after, experts))
    names = ordered_experts(list(before.gating), experts)[::-1]
    et = [expert_title(n, experts) + (" (removed)" if n in gone else "") for n in names]
    fig.add_trace(go.Bar(x=[before.gating.get(n, 0.0) for n in names], y=et, orientation="h", name="before",
                         marker_color=BEFORE, legendgroup="before", showlegend=False,
                         hovertemplate="%{y} before: weight %{x:.3f}<extra></extra>"), row=1, col=2)
    fig.add_trace(go.Bar(x=[after.gating.get(n, 0.0) for n in names], y=et, orientation="h", name="after",
                         marker_color=[GREY if n in gone else HIGHLIGHT for n in names], legendgroup="after",
                         showlegend=False, hovertemplate="%{y} after: weight %{x:.3f}<extra></extra>"),
                  row=1, col=2)
    fig.update_layout(barmode="group", font=FONT, plot_bgcolor="white", height=120 + 40 * max(len(names), 5),
                      title={"text": what_if_title(before, after, experts), "x": 0.0},
                      margin={"l": 10, "r": 30, "t": 80, "b": 40}, legend={"orientation": "h", "y": -0.1})
    fig.update_xaxes(range=[0, 1.12], gridcolor="#EEEEEE")
    return fig


def what_if_title(before: Prediction, after: Prediction, experts: Mapping[str, ExpertInfo] = EXPERTS) -> str:
    gone = removed_experts(before, after, experts)
    what = ", ".join(expert_title(n, experts) for n in gone) or "nothing"
    return (f"Without {what}: {label_title(before.diagnosis)} {fmt(before.probabilities[before.diagnosis])}"
            f" \u2192 {label_title(after.diagnosis)} {fmt(after.probabilities[after.diagnosis])}")


def _routing(pred: Prediction, experts: Mapping[str, ExpertInfo]) -> str:
    return " and ".join(f"{expert_title(n, experts)} ({fmt(pred.gating.get(n, 0.0))})"
                        for n in pred.selected_experts) or "no expert"


def what_if_summary(before: Prediction, after: Prediction, experts: Mapping[str, ExpertInfo] = EXPERTS) -> str:
    """Plain words: what was removed, how the gate re-routed, how the probabilities changed.

    Args:
        before: the original prediction.
        after: the re-run with experts or modalities removed.
        experts: expert specs for titles.
    """
    gone = removed_experts(before, after, experts)
    lost = [m for m, present in before.modalities.items() if present and not after.modalities.get(m, False)]
    masked = [expert_title(n, experts) for n in gone if expert_available(n, experts, after.modalities)]
    blocked = [expert_title(n, experts) for n in gone if not expert_available(n, experts, after.modalities)]
    removed = masked + [f"the {m} input" for m in lost]
    text = f"Removed: {', '.join(removed) if removed else 'nothing'}"
    if blocked:
        text += f" (so {' and '.join(blocked)} could not be used)"
    parts = [text + "."]
    parts.append(f"The gate first chose {_routing(before, experts)}; now it chooses {_routing(after, experts)}.")
    d = before.diagnosis
    delta = after.probabilities.get(d, 0.0) - before.probabilities[d]
    if after.diagnosis == d:
        parts.append(f"The most probable diagnosis stays {label_title(d)}; its probability goes from "
                     f"{fmt(before.probabilities[d])} to {fmt(after.probabilities.get(d, 0.0))} ({delta:+.2f}).")
    else:
        a = after.diagnosis
        parts.append(f"The most probable diagnosis changes from {label_title(d)} ({fmt(before.probabilities[d])}, "
                     f"now {fmt(after.probabilities.get(d, 0.0))}) to {label_title(a)} "
                     f"({fmt(after.probabilities[a])}, was {fmt(before.probabilities.get(a, 0.0))}).")
    moved = max(before.probabilities, key=lambda lb: abs(after.probabilities.get(lb, 0.0) - before.probabilities[lb]))
    if moved not in (d, after.diagnosis):
        change = after.probabilities.get(moved, 0.0) - before.probabilities[moved]
        parts.append(f"The largest change is for {label_title(moved)} ({change:+.2f}).")
    if after.uncertain and not before.uncertain:
        parts.append("The re-run answer is flagged uncertain.")
    return " ".join(parts)
