"""One plain-language paragraph generated from the prediction's numbers and nothing else.

Every sentence is a template filled with numbers from the `Prediction` (or from computed
attributions passed in `extras`), so the text cannot claim anything the model did not compute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from moe_app.explain.style import ExpertInfo, expert_available, expert_title, fmt, label_title
from moe_app.labels import MODALITIES
from moe_app.model.experts import EXPERTS
from moe_app.prediction import Prediction

_MODALITY_WORDS = {"image": "image", "report": "report", "vitals": "vitals and labs"}


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _top(probs: Mapping[str, float]) -> tuple[str, float]:
    label = max(probs, key=lambda lb: probs[lb])
    return label, probs[label]


def _expert_sentence(pred: Prediction, experts: Mapping[str, ExpertInfo]) -> str:
    n_total = len(pred.gating) or len(pred.selected_experts)
    parts = []
    for name in pred.selected_experts:
        text = f"{expert_title(name, experts)} (weight {fmt(pred.gating.get(name, 0.0))})"
        if name in pred.experts:
            own_label, own_p = _top(pred.experts[name].probabilities)
            text += f", which on its own gave {label_title(own_label)} {fmt(own_p)}"
        parts.append(text)
    k = len(pred.selected_experts)
    noun = "expert" if k == 1 else "experts"
    return f"It was decided by {k} of {n_total} {noun}: " + "; ".join(parts) + "."


def _agreement_sentence(pred: Prediction, experts: Mapping[str, ExpertInfo]) -> str:
    tops = {n: _top(pred.experts[n].probabilities)[0] for n in pred.selected_experts if n in pred.experts}
    if len(tops) < 2:
        return ""
    if len(set(tops.values())) == 1:
        return "The experts used agree on the most probable diagnosis."
    differ = [f"{expert_title(n, experts)} favours {label_title(lb)}" for n, lb in tops.items()]
    return "The experts used disagree: " + _join(differ) + "."


def _contribution_sentence(pred: Prediction, experts: Mapping[str, ExpertInfo]) -> str:
    label = pred.diagnosis
    names = [n for n in pred.selected_experts if n in pred.contributions]
    if not names:
        return ""
    parts = [f"{fmt(pred.contributions[n].get(label, 0.0))} from {expert_title(n, experts)}" for n in names]
    return f"The probability of {label_title(label)} is made of " + _join(parts) + "."


def _missing_sentence(pred: Prediction, experts: Mapping[str, ExpertInfo]) -> str:
    missing = [m for m in MODALITIES if not pred.modalities.get(m, False)]
    if not missing:
        return "All three inputs (image, report, vitals and labs) were present."
    blocked = [expert_title(n, experts) for n in pred.gating
               if not expert_available(n, experts, pred.modalities)]
    words = _join([_MODALITY_WORDS.get(m, m) for m in missing])
    text = f"Not available for this case: {words}"
    if blocked:
        text += f", so {_join(blocked)} could not be used"
    return text + "."


def _runner_up_sentence(pred: Prediction) -> str:
    ranked = sorted(pred.probabilities, key=lambda lb: pred.probabilities[lb], reverse=True)
    if len(ranked) < 2:
        return ""
    second = ranked[1]
    return f"Next most probable: {label_title(second)} ({fmt(pred.probabilities[second])})."


def _extras_sentences(pred: Prediction, extras: Mapping[str, Any], experts: Mapping[str, ExpertInfo]) -> list[str]:
    out = []
    for name, probs in (extras.get("opinions") or {}).items():
        if name not in pred.selected_experts and probs:
            label, p = _top(probs)
            out.append(f"Asked separately, {expert_title(name, experts)} (not used for the answer) "
                       f"would give {label_title(label)} {fmt(p)}.")
    words = [(w, s) for w, s in (extras.get("report_words") or []) if s is not None and w.strip()]
    pos = [w for w, s in sorted(words, key=lambda ws: -ws[1]) if s > 0.25][:3]
    neg = [w for w, s in sorted(words, key=lambda ws: ws[1]) if s < -0.25][:3]
    if pos:
        out.append(f"Report words that raised {label_title(pred.diagnosis)} most: "
                   + _join([f"\u201c{w}\u201d" for w in pos]) + ".")
    if neg:
        out.append("Report words that lowered it most: " + _join([f"\u201c{w}\u201d" for w in neg]) + ".")
    rows = [r for r in (extras.get("vitals") or []) if not r.missing and r.attribution > 0]
    rows = sorted(rows, key=lambda r: -r.attribution)[:3]
    if rows:
        out.append(f"Vitals and labs that raised {label_title(pred.diagnosis)} most: "
                   + _join([f"{r.title} {r.value_text}" for r in rows]) + ".")
    return out


def summary(pred: Prediction, experts: Mapping[str, ExpertInfo] = EXPERTS,
            extras: Mapping[str, Any] | None = None) -> str:
    """One paragraph in plain words, generated from the numbers only.

    Args:
        pred: the prediction.
        experts: expert specs for titles.
        extras: optional computed explanations to mention: "opinions" (expert -> label -> p of
            unselected experts, from `expert_opinion`), "report_words" (`report_highlights`
            output) and "vitals" (`vitals_attributions` output).

    Returns:
        The paragraph (no line breaks).
    """
    sentences = [
        f"Most probable diagnosis: {label_title(pred.diagnosis)} "
        f"(probability {fmt(pred.probabilities[pred.diagnosis])}).",
        _expert_sentence(pred, experts),
        _contribution_sentence(pred, experts),
        _agreement_sentence(pred, experts),
        _runner_up_sentence(pred),
        _missing_sentence(pred, experts),
    ]
    sentences += _extras_sentences(pred, extras or {}, experts)
    if pred.uncertain:
        reason = f" ({pred.uncertainty_reason})" if pred.uncertainty_reason else ""
        sentences.append(f"The model flagged this answer as uncertain{reason}; "
                         "do not rely on it without your own review.")
    return " ".join(s for s in sentences if s)
