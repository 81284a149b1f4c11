"""Prediction -> plotly figures: probabilities, gate weights, expert opinions, contributions.

Everything here reads only the `Prediction` the runtime returned, so these figures cost no
model call and show exactly the numbers of the forward pass that made the diagnosis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import plotly.graph_objects as go

from moe_app.explain.style import (
    FONT,
    GREY,
    HIGHLIGHT,
    MODALITY_COLOURS,
    MODALITY_ORDER,
    MODALITY_TITLES,
    NEUTRAL,
    ExpertInfo,
    expert_available,
    expert_modality,
    expert_title,
    fmt,
    label_title,
    ordered_experts,
    rounded_parts,
)
from moe_app.model.experts import EXPERTS
from moe_app.prediction import Prediction


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        font=FONT,
        height=height,
        margin={"l": 10, "r": 30, "t": 90, "b": 40},
        plot_bgcolor="white",
        # above the plot, under the title: below it, the legend ran into the x-axis title
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0.0},
    )
    return fig


def probabilities_figure(pred: Prediction) -> go.Figure:
    """Horizontal bars of the mixture probabilities, the predicted diagnosis highlighted.

    Args:
        pred: the prediction to show.

    Returns:
        A figure whose title names the diagnosis and, when the abstention rule fired, says so.
    """
    labels = list(pred.probabilities)[::-1]  # plotly draws the first category at the bottom
    values = [pred.probabilities[lb] for lb in labels]
    colours = [HIGHLIGHT if lb == pred.diagnosis else NEUTRAL for lb in labels]
    fig = go.Figure(go.Bar(
        x=values, y=[label_title(lb) for lb in labels], orientation="h", marker_color=colours,
        text=[fmt(v) for v in values], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    ))
    fig.update_xaxes(range=[0, 1.08], title="probability", gridcolor="#EEEEEE")
    title = f"Most probable: {label_title(pred.diagnosis)} ({fmt(pred.probabilities[pred.diagnosis])})"
    if pred.uncertain:
        reason = f": {pred.uncertainty_reason}" if pred.uncertainty_reason else ""
        title += f"<br><b>UNCERTAIN</b>{reason}"
    return _layout(fig, title, 300)


def _gate_status(name: str, pred: Prediction, experts: Mapping[str, ExpertInfo]) -> str:
    if name in pred.selected_experts:
        return "selected"
    return "not selected" if expert_available(name, experts, pred.modalities) else "modality missing"


def gate_figure(pred: Prediction, experts: Mapping[str, ExpertInfo] = EXPERTS) -> go.Figure:
    """Gate weight per expert, grouped by modality; unused experts greyed at 0.

    Selected experts show their renormalised weight (these sum to 1). Unselected experts sit at
    0 in grey, labelled "not selected" or "modality missing"; their gate probability before the
    top-k selection is in the hover text and drawn as a hollow marker.

    Args:
        pred: the prediction to show.
        experts: expert specs (names, titles, modalities), by default the model's pool.
    """
    names = ordered_experts(list(pred.gating), experts)[::-1]
    titles = [expert_title(n, experts) for n in names]
    fig = go.Figure()
    for modality in MODALITY_ORDER:
        rows = [i for i, n in enumerate(names)
                if n in pred.selected_experts and expert_modality(n, experts) == modality]
        if rows:
            fig.add_trace(go.Bar(
                x=[pred.gating[names[i]] for i in rows], y=[titles[i] for i in rows], orientation="h",
                name=MODALITY_TITLES[modality], marker_color=MODALITY_COLOURS[modality],
                text=[f"weight {fmt(pred.gating[names[i]])}" for i in rows], textposition="outside",
                cliponaxis=False,
                customdata=[[pred.gate_probabilities.get(names[i], math.nan)] for i in rows],
                hovertemplate="%{y}: weight %{x:.3f} (gate probability before top-k "
                              "%{customdata[0]:.3f})<extra></extra>",
            ))
    unused = [i for i, n in enumerate(names) if n not in pred.selected_experts]
    if unused:
        status = [_gate_status(names[i], pred, experts) for i in unused]
        before = [pred.gate_probabilities.get(names[i], math.nan) for i in unused]
        fig.add_trace(go.Scatter(
            x=[0.0] * len(unused), y=[titles[i] for i in unused], mode="markers+text",
            name="not used", marker={"color": GREY, "size": 10, "symbol": "line-ns-open",
                                     "line": {"width": 3, "color": GREY}},
            text=[f"0 ({s})" for s in status], textposition="middle right",
            textfont={"color": "#757575"}, customdata=[[b, s] for b, s in zip(before, status, strict=True)],
            hovertemplate="%{y}: %{customdata[1]}, weight 0 (gate probability before top-k "
                          "%{customdata[0]:.3f})<extra></extra>",
        ))
    if pred.gate_probabilities:
        fig.add_trace(go.Scatter(
            x=[pred.gate_probabilities.get(n, math.nan) for n in names], y=titles, mode="markers",
            name="gate probability before top-k", marker={"symbol": "diamond-open", "size": 9,
                                                          "color": "#424242"},
            hovertemplate="%{y}: gate probability before top-k %{x:.3f}<extra></extra>",
        ))
    fig.update_layout(barmode="overlay")  # one bar per row: traces split by modality only for colour
    fig.update_yaxes(categoryorder="array", categoryarray=titles)
    fig.update_xaxes(range=[0, 1.15], title="gate weight", gridcolor="#EEEEEE")
    k = len(pred.selected_experts)
    return _layout(fig, f"Gate: {k} of {len(names)} experts decided", 80 + 42 * len(names))


def opinions_figure(pred: Prediction, extra: dict[str, dict[str, float]] | None = None,
                    experts: Mapping[str, ExpertInfo] = EXPERTS) -> go.Figure:
    """Heatmap experts x diagnoses of each expert's own probabilities.

    Args:
        pred: the prediction; its selected experts come first, in order of weight.
        extra: opinions of unselected experts computed on demand (runtime `expert_opinion`),
            expert -> label -> probability; shown below, labelled "not used".
        experts: expert specs for titles.
    """
    labels = list(pred.probabilities)
    rows: list[tuple[str, dict[str, float]]] = []
    for name in pred.selected_experts:
        if name in pred.experts:
            title = f"{expert_title(name, experts)} (weight {fmt(pred.gating.get(name, 0.0))})"
            rows.append((title, pred.experts[name].probabilities))
    for name, probs in (extra or {}).items():
        if name not in pred.selected_experts:
            rows.append((f"{expert_title(name, experts)} (not used)", probs))
    rows = rows[::-1]
    z = [[r[1].get(lb, math.nan) for lb in labels] for r in rows]
    fig = go.Figure(go.Heatmap(
        z=z, x=[label_title(lb) for lb in labels], y=[r[0] for r in rows], zmin=0.0, zmax=1.0,
        colorscale="Blues", text=[[fmt(v) for v in row] for row in z], texttemplate="%{text}",
        colorbar={"title": "p"}, hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>",
    ))
    fig.update_xaxes(side="top")
    return _layout(fig, "What each expert says on its own", 120 + 45 * max(len(rows), 1))


def contributions_figure(pred: Prediction, label: str | None = None,
                         experts: Mapping[str, ExpertInfo] = EXPERTS) -> go.Figure:
    """How each selected expert's weighted vote (weight x its probability) builds the output.

    One stacked bar per diagnosis; the segments are the experts' contributions and add up to
    the mixture probability annotated at the bar's end (displayed values are rounded so that
    the displayed parts add up exactly to the displayed total). The title spells out the sum
    for `label`.

    Args:
        pred: the prediction.
        label: the diagnosis to spell out; default the predicted one.
        experts: expert specs for titles and colours.
    """
    label = label or pred.diagnosis
    labels = list(pred.probabilities)[::-1]
    names = [n for n in pred.selected_experts if n in pred.contributions]
    shown = {lb: rounded_parts([pred.contributions[n].get(lb, 0.0) for n in names]) for lb in labels}
    fig = go.Figure()
    for j, name in enumerate(names):
        modality = expert_modality(name, experts)
        w = pred.gating.get(name, 0.0)
        own = pred.experts[name].probabilities if name in pred.experts else {}
        fig.add_trace(go.Bar(
            x=[pred.contributions[name].get(lb, 0.0) for lb in labels], y=[label_title(lb) for lb in labels],
            orientation="h", name=expert_title(name, experts),
            marker={"color": MODALITY_COLOURS.get(modality, GREY), "opacity": 1.0 - 0.35 * (j % 2),
                    "line": {"color": "white", "width": 1}},
            text=[fmt(shown[lb][j], 3) for lb in labels], textposition="inside",
            customdata=[[w, own.get(lb, math.nan)] for lb in labels],
            hovertemplate=f"{expert_title(name, experts)}<br>%{{y}}: weight %{{customdata[0]:.3f}}"
                          " x own probability %{customdata[1]:.3f} = %{x:.4f}<extra></extra>",
        ))
    for lb in labels:
        total = pred.probabilities[lb]
        fig.add_annotation(x=total, y=label_title(lb), text=f"<b>= {fmt(sum(shown[lb]), 3)}</b>",
                           showarrow=False, xanchor="left", xshift=6,
                           font={"color": HIGHLIGHT if lb == label else "#424242"})
    terms = " + ".join(f"{fmt(pred.gating.get(n, 0.0))} \u00d7 {fmt(pred.experts[n].probabilities.get(label, 0.0))}"
                       for n in names if n in pred.experts)
    title = f"P({label_title(label)}) = {fmt(pred.probabilities[label], 3)}"
    if terms:
        title += f" ≈ {terms}<br><sup>gate weight × expert's own probability, summed over the experts used</sup>"
    fig.update_layout(barmode="stack")
    fig.update_xaxes(range=[0, 1.15], title="probability", gridcolor="#EEEEEE")
    return _layout(fig, title, 340)
