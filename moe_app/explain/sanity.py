"""Sanity checks of the explanations themselves (Adebayo et al. 2018, "Sanity checks for
saliency maps"): an explanation that does not change when the model's weights are randomised
explains the input, not the model.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
from scipy.stats import spearmanr

from moe_app.model import LoadedModel


def randomised_copy(model: LoadedModel, seed: int = 0, experts: tuple[str, ...] | None = None) -> LoadedModel:
    """A deep copy whose experts (all, or `experts`) have freshly initialised weights.

    The gate is kept, so the same experts are selected and the comparison is like for like.
    """
    clone = copy.deepcopy(model.model)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for name in experts or tuple(clone.experts.keys()):
            for module in clone.experts[name].modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
    finally:
        torch.random.set_rng_state(gen_state)
    clone.eval()
    return dataclasses.replace(model, model=clone)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two attribution vectors (0 when either is constant)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))
