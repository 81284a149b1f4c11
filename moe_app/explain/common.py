"""What the attribution methods share: one case's inputs, the class, the experts that read an input.

Attributions explain the experts' votes at this case's gate weights: the target of an
attribution is `sum_e w_e * p_e(class)` over the selected experts that read the attributed
input, with `w_e` the renormalised gate weights of the prediction held fixed. That is exactly
these experts' share of the output probability (`Prediction.contributions`). How the same input
also moved the routing is shown by the gate figure and the what-if, not by these attributions.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from moe_app.errors import ModelError
from moe_app.intake.case import Case
from moe_app.model import EXPERTS, LoadedModel, ModelInputs, featurize
from moe_app.prediction import Prediction


@dataclass(frozen=True)
class Readers:
    """The experts whose votes an attribution explains, with their weights."""

    weights: dict[str, float]  # expert -> weight in the attributed target
    used: bool  # False: none of them was selected; weights are then 1/n over the specialists


def case_inputs(model: LoadedModel, case: Case) -> ModelInputs:
    """The model inputs of one case, exactly as the runtime builds them (batch of 1)."""
    return featurize([case], model.tokenizer, model.cfg)


def class_index(model: LoadedModel, label: str) -> int:
    try:
        return model.cfg.labels.index(label)
    except ValueError:
        raise ModelError(f"the diagnosis {label!r} is not one of the model's labels") from None


def readers(model: LoadedModel, pred: Prediction, input_name: str, modality: str) -> Readers:
    """Selected experts that read `input_name`, weighted by their gate weights.

    When none of them was selected (e.g. the gate preferred the image experts) the specialists
    of `modality` are explained instead, each with weight 1/n, and `used` is False so the UI
    can say that these experts did not take part in the answer.
    """
    experts = model.model.experts
    chosen = {n: pred.gating.get(n, 0.0) for n in pred.selected_experts
              if n in experts and input_name in experts[n].input_names and pred.gating.get(n, 0.0) > 0}
    if chosen:
        return Readers(weights=chosen, used=True)
    specialists = [n for n in model.cfg.experts if EXPERTS[n].modality == modality]
    if not specialists:
        return Readers(weights={}, used=False)
    return Readers(weights={n: 1.0 / len(specialists) for n in specialists}, used=False)


def require_eval(model: LoadedModel) -> None:
    """Attributions must see the inference network (no dropout, BatchNorm running statistics)."""
    if model.model.training:
        raise ModelError("the model is in training mode; explanations need model.eval()")


_LOCK = threading.RLock()
_PRIVATE: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


@contextmanager
def private_model(model: LoadedModel) -> Iterator[LoadedModel]:
    """The model with a private copy of its network, used by one explanation at a time.

    captum attaches hooks to the explained layers (LayerIntegratedGradients even replaces the
    embedding output). On a network shared with a predictor serving other users, those hooks
    would leak into their forward passes; on the private copy they cannot. The copy is made
    once per loaded model (the weights never change after loading).

    The explanation runs on one torch thread: these networks are small, so intra-op parallelism
    gains little, and on a 2-core machine shared with the web app and its predictions the
    spinning OpenMP workers made one explanation 10-50x slower (measured: median 40 ms on one
    thread versus 840 ms on two threads under load). The previous setting is restored after.
    """
    require_eval(model)
    with _LOCK:
        net = _PRIVATE.get(model.model)
        if net is None:
            net = copy.deepcopy(model.model).eval()
            _PRIVATE[model.model] = net
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield dataclasses.replace(model, model=net)
        finally:
            torch.set_num_threads(threads)
