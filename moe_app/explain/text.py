"""Report explanations: Integrated Gradients on the token embeddings, shown word by word.

Integrated Gradients (Sundararajan et al. 2017, "Axiomatic attribution for deep networks") via
captum's `LayerIntegratedGradients` on each report-reading expert's embedding table. The
baseline replaces every word piece by [PAD] (a zero embedding) and keeps [CLS]/[SEP] and the
attention mask, so it is "the same report with its words blanked". By completeness the token
attributions add up to target(report) - target(baseline) up to the integration error `delta`.
The target is the weighted vote of the selected experts that read the report (see
`explain.common`), in probability units of the explained diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from captum.attr import LayerIntegratedGradients

from moe_app.errors import ModelError
from moe_app.explain.common import case_inputs, class_index, private_model, readers, require_eval
from moe_app.intake.case import Case
from moe_app.model import LoadedModel, ModelInputs
from moe_app.prediction import Prediction

if TYPE_CHECKING:
    from tokenizers import Encoding

N_STEPS = 32  # Gauss-Legendre points for small experts (|delta| ~1e-3 of probability)
LARGE_STEPS = 8  # for experts with a large (e.g. pretrained, frozen) encoder: ~1 s per report on 2 cores
LARGE_PARAMS = 5_000_000  # parameter count from which an expert counts as large


def default_steps(expert: torch.nn.Module) -> int:
    """Integration points for one expert: fewer for a large encoder, to stay within the UI's budget.

    The completeness error grows as the points get fewer; it is reported (`delta`) with every
    attribution, so the UI can show how exact the highlights are.
    """
    return LARGE_STEPS if sum(p.numel() for p in expert.parameters()) >= LARGE_PARAMS else N_STEPS


@dataclass(frozen=True)
class TokenAttributions:
    """Raw report attributions of one case (word pieces as the model saw them)."""

    label: str  # the explained diagnosis
    tokens: list[str]  # word pieces incl. [CLS]/[SEP], (T,)
    offsets: list[tuple[int, int]]  # character span of each piece in the report; (0, 0) for specials
    word_ids: list[int | None]  # word index of each piece (None for specials)
    scores: np.ndarray  # (T,) float64, summed over the explained experts
    per_expert: dict[str, np.ndarray]  # expert -> (T,) attributions of its weighted vote
    weights: dict[str, float]  # expert -> weight in the target
    used: bool  # False when no report-reading expert was selected for the answer
    output: float  # target at the report
    baseline_output: float  # target with every word blanked
    delta: float  # completeness error: sum(scores) - (output - baseline_output)


def _trim(x: ModelInputs) -> ModelInputs:
    """Drop trailing padding (exact: padding is masked everywhere and has a zero embedding)."""
    n = int(x.attention_mask.sum())
    ids, mask = x.input_ids[:, :n], x.attention_mask[:, :n]  # (1, n)
    return ModelInputs(image=x.image, input_ids=ids, attention_mask=mask, vitals=x.vitals, presence=x.presence)


def _expert_ig(model: LoadedModel, name: str, x: ModelInputs, baseline_ids: torch.Tensor, c: int,
               weight: float, n_steps: int) -> tuple[np.ndarray, float, float]:
    """IG of `weight * p_expert(c)` on one expert's embeddings: (T,) scores, output, baseline output."""
    expert = model.model.experts[name]
    others = tuple(n for n in expert.input_names if n != "input_ids")

    def target(input_ids: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        logits = expert(input_ids=input_ids, **dict(zip(others, rest, strict=True)))  # (B, C)
        return weight * model.model.expert_probs(logits)[:, c]  # (B,)

    extra = tuple(getattr(x, n) for n in others)
    lig = LayerIntegratedGradients(target, expert.embeddings)
    with torch.enable_grad():
        attr = lig.attribute(x.input_ids, baselines=baseline_ids, additional_forward_args=extra,
                             n_steps=n_steps, method="gausslegendre")
    with torch.no_grad():  # both end points in one batch: (2, T)
        both = target(torch.cat([x.input_ids, baseline_ids]), *(torch.cat([t, t]) for t in extra))
    scores = attr.detach().double().sum(-1)[0].numpy()  # (B, T, D) -> (T,)
    out, base = float(both[0]), float(both[1])
    return scores, out, base


def report_attributions(model: LoadedModel, case: Case, pred: Prediction, label: str | None = None,
                        n_steps: int | None = None) -> TokenAttributions | None:
    """Token attributions of the report for one diagnosis, with their completeness error.

    Args:
        model: the loaded model (eval mode).
        case: the case (needs a report).
        pred: its prediction (selected experts and weights).
        label: the diagnosis to explain; default the predicted one.
        n_steps: integration points (more: smaller `delta`, slower); default per expert,
            see `default_steps`.

    Returns:
        The attributions, or None when the case has no report.
    """
    require_eval(model)
    with private_model(model) as own:
        return _report_attributions(own, case, pred, label, n_steps)


def _report_attributions(model: LoadedModel, case: Case, pred: Prediction, label: str | None,
                         n_steps: int | None) -> TokenAttributions | None:
    """One case's IG on the private network (see `report_attributions`)."""
    if not case.modalities["report"]:
        return None
    label = label or pred.diagnosis
    c = class_index(model, label)
    who = readers(model, pred, "input_ids", "report")
    if not who.weights:
        return None
    x = _trim(case_inputs(model, case))
    enc = _encoding(model, case.report or "")
    if list(enc.ids) != x.input_ids[0].tolist():
        raise ModelError("the report tokenizer disagrees with the model inputs; the model folder is inconsistent")
    special = torch.tensor(enc.special_tokens_mask, dtype=torch.bool).view(1, -1)  # (1, T)
    baseline = torch.where(special, x.input_ids, torch.full_like(x.input_ids, _pad_id(model)))  # (1, T)
    per, out, base = {}, 0.0, 0.0
    for name, w in who.weights.items():
        steps = n_steps or default_steps(model.model.experts[name])
        per[name], o, b = _expert_ig(model, name, x, baseline, c, w, steps)
        out, base = out + o, base + b
    scores = np.sum(list(per.values()), axis=0)
    return TokenAttributions(
        label=label, tokens=list(enc.tokens), offsets=[tuple(o) for o in enc.offsets],
        word_ids=list(enc.word_ids), scores=scores, per_expert=per, weights=who.weights, used=who.used,
        output=out, baseline_output=base, delta=float(scores.sum() - (out - base)),
    )


def _encoding(model: LoadedModel, text: str) -> Encoding:
    backend = model.tokenizer.backend
    backend.no_padding()
    backend.enable_truncation(max_length=model.cfg.max_tokens)
    return backend.encode(text)


def _pad_id(model: LoadedModel) -> int:
    pad = model.tokenizer.backend.token_to_id("[PAD]")
    return 0 if pad is None else int(pad)


def word_scores(att: TokenAttributions, text: str) -> list[tuple[int, int, float]]:
    """Word pieces summed into words (sum keeps completeness): (start, end, score) in text order."""
    words: dict[int, list[float]] = {}
    for wid, (start, end), s in zip(att.word_ids, att.offsets, att.scores, strict=True):
        if wid is None or end <= start:
            continue
        span = words.setdefault(wid, [start, end, 0.0])
        span[0], span[1], span[2] = min(span[0], start), max(span[1], end), span[2] + float(s)
    return sorted((int(a), int(b), s) for a, b, s in words.values())


def highlights(att: TokenAttributions | None, text: str) -> list[tuple[str, float | None]]:
    """The whole report as (piece, score) pairs for gr.HighlightedText.

    Words get their attribution divided by the largest absolute word attribution (so in
    [-1, 1]; positive = raised the diagnosis); whitespace, punctuation between words and any
    text past the model's token limit get None (shown unhighlighted).
    """
    if att is None:
        return [(text, None)] if text else []
    words = word_scores(att, text)
    top = max((abs(s) for _, _, s in words), default=0.0)
    out: list[tuple[str, float | None]] = []
    pos = 0
    for start, end, s in words:
        if start > pos:
            out.append((text[pos:start], None))
        out.append((text[start:end], float(np.clip(s / top, -1.0, 1.0)) if top > 0 else 0.0))
        pos = end
    if pos < len(text):
        out.append((text[pos:], None))
    return out


def report_highlights(model: LoadedModel, case: Case, pred: Prediction,
                      label: str | None = None) -> list[tuple[str, float | None]]:
    """Word-level report attributions for the predicted (or given) diagnosis, HighlightedText-ready.

    Args:
        model: the loaded model (eval mode).
        case: the case the prediction was made for.
        pred: its prediction.
        label: the diagnosis to explain; default the predicted one.

    Returns:
        The report split into pieces; words carry a score in [-1, 1], the rest None.
        Empty when the case has no report.
    """
    text = case.report or ""
    return highlights(report_attributions(model, case, pred, label), text)
