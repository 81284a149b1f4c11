"""Mixture arrays -> `Prediction` records, shared by the ONNX Runtime and the PyTorch predictor.

Both runtimes reduce a batch to the same `Mixture` (plain numpy arrays), so everything a
clinician reads (diagnosis, gate weights, contributions, the abstention flag) is computed by
one piece of code whichever runtime produced the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from moe_app.model import EXPERTS, AbstentionRule
from moe_app.prediction import ExpertOpinion, Prediction

ROUND = 6  # decimals kept in the JSON (well below the 1e-4 parity tolerance)


@dataclass(frozen=True)
class Mixture:
    """One batch after routing and the selected experts, as numpy arrays."""

    probs: np.ndarray  # (B, C) mixture probabilities
    gate_probs: np.ndarray  # (B, E) full softmax over available experts (0 = unavailable)
    weights: np.ndarray  # (B, E) renormalised top-k weights, exactly 0 for unselected experts
    selected: np.ndarray  # (B, k) int, selected expert indices best first, -1 = padding
    expert_probs: np.ndarray  # (B, E, C) calibrated expert probabilities, 0 where not run
    ran: np.ndarray  # (B, E) bool, which experts were computed for each case

    def __len__(self) -> int:
        return int(self.probs.shape[0])


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Numerically stable softmax over the last axis of `logits / temperature`."""
    z = logits.astype(np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def mix(gate_probs: np.ndarray, weights: np.ndarray, selected: np.ndarray,
        expert_logits: np.ndarray, ran: np.ndarray, temperature: float) -> Mixture:
    """The exact mixture: p = sum_e w_e * softmax(z_e / T), with experts that did not run at 0.

    Args:
        gate_probs: (B, E) full gate softmax.
        weights: (B, E) renormalised top-k weights.
        selected: (B, k) selected expert indices (-1 = padding).
        expert_logits: (B, E, C) raw expert logits (anything where `ran` is False).
        ran: (B, E) bool.
        temperature: the model's calibration temperature.
    """
    expert_probs = softmax(expert_logits, temperature) * ran[..., None]  # (B, E, C)
    contributions = weights[..., None] * expert_probs  # (B, E, C)
    return Mixture(probs=contributions.sum(1), gate_probs=gate_probs, weights=weights,  # (B, C)
                   selected=selected, expert_probs=expert_probs, ran=ran)


def uncertainty_reason(probs: np.ndarray, rule: AbstentionRule, labels: Sequence[str]) -> str:
    """Plain words for a case the abstention rule flags ("" when it does not fire)."""
    fired = bool(rule.uncertain(torch.from_numpy(np.asarray(probs, np.float32)[None]))[0])
    if not fired:
        return ""
    top = int(np.argmax(probs))
    if rule.rule != "max_prob_below":
        return f"The model card's abstention rule ({rule.rule}) fired; review the case yourself."
    return (
        f"The most probable diagnosis ({labels[top]}) has probability {float(probs[top]):.2f}, "
        f"below the model card's abstention threshold of {rule.threshold:.2f}; "
        "treat this answer as uncertain and review the case yourself."
    )


def _rounded(values: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    return {name: round(float(v), ROUND) for name, v in zip(names, values, strict=True)}


def to_prediction(mixture: Mixture, row: int, *, case: str, labels: Sequence[str],
                  experts: Sequence[str], modalities: dict[str, bool], rule: AbstentionRule,
                  model_version: str, runtime: str, latency_ms: float) -> Prediction:
    """One row of a `Mixture` as the `Prediction` record (`predict --json` contract).

    Args:
        mixture: the batch.
        row: which case of the batch.
        case: the case's display name (folder or upload name).
        labels: class names in model order.
        experts: expert names in gate order.
        modalities: which inputs the case had.
        rule: the model card's abstention rule.
        model_version: e.g. "moe-0123abcd4567".
        runtime: e.g. "onnxruntime:CPUExecutionProvider".
        latency_ms: from the start of intake to this record.
    """
    probs = mixture.probs[row]  # (C,)
    weights = mixture.weights[row]  # (E,)
    chosen = [int(i) for i in mixture.selected[row] if i >= 0 and weights[i] > 0]
    chosen.sort(key=lambda i: -float(weights[i]))
    names = [experts[i] for i in chosen]
    opinions = {
        experts[i]: ExpertOpinion(modality=EXPERTS[experts[i]].modality,
                                  probabilities=_rounded(mixture.expert_probs[row, i], labels))
        for i in chosen
    }
    contributions = {
        experts[i]: _rounded(weights[i] * mixture.expert_probs[row, i], labels) for i in chosen
    }
    reason = uncertainty_reason(probs, rule, labels)
    return Prediction(
        case=case,
        diagnosis=labels[int(np.argmax(probs))],
        probabilities=_rounded(probs, labels),
        gating=_rounded(weights, experts),
        selected_experts=names,
        experts=opinions,
        contributions=contributions,
        modalities=dict(modalities),
        uncertain=bool(reason),
        model_version=model_version,
        runtime=runtime,
        latency_ms=round(latency_ms, 2),
        gate_probabilities=_rounded(mixture.gate_probs[row], experts),
        uncertainty_reason=reason,
    )
