"""The predictor contract shared by both runtimes, and `load_predictor` which picks one.

A predictor turns cases into `Prediction` records with true conditional computation: the gate
runs on the whole batch, then each expert runs only on the rows that selected it, so an
unselected expert is never computed. `OnnxPredictor` does this with one ONNX Runtime session
per graph; `TorchPredictor` (the reference) with the model's own forward pass. Both featurise
with `moe_app.model.featurize`, so they consume identical arrays.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from moe_app.errors import ConfigError, ModelError
from moe_app.intake.case import Case
from moe_app.labels import MODALITIES
from moe_app.model import EXPERTS, AbstentionRule, ModelInputs, MoEConfig, featurize, route
from moe_app.model.features import model_modalities
from moe_app.prediction import ExpertOpinion, Prediction
from moe_app.runtime.postprocess import Mixture, mix, softmax, to_prediction

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnx", "torch")


class Predictor(Protocol):
    """What the pipeline, the CLI and the UI hold (one per process, shared by all users)."""

    runtime: str  # "onnxruntime:<provider>" or "torch:cpu"
    model_version: str
    weights_sha256: str

    @property
    def expert_names(self) -> tuple[str, ...]: ...

    def predict(self, cases: Sequence[Case], *, top_k: int | None = None,
                started: Sequence[float] | None = None) -> list[Prediction]: ...

    def what_if(self, case: Case, *, removed_experts: Sequence[str] = (),
                removed_modalities: Sequence[str] = (), top_k: int | None = None) -> Prediction: ...

    def expert_opinion(self, case: Case, expert_name: str) -> ExpertOpinion: ...


@dataclass(frozen=True)
class ModelMeta:
    """Everything a predictor needs besides the network weights."""

    cfg: MoEConfig
    tokenizer: object  # moe_app.model.text.ReportTokenizer
    abstention: AbstentionRule
    weights_sha256: str
    model_dir: Path

    @property
    def version(self) -> str:
        return f"moe-{self.weights_sha256[:12]}"  # as `LoadedModel.version`


def availability(presence: np.ndarray, experts: Sequence[str]) -> np.ndarray:
    """(B, 3) presence -> (B, E) bool: every required modality present (as `MoEModel.availability`)."""
    req = np.array([[m in EXPERTS[n].requires for m in MODALITIES] for n in experts])  # (E, 3)
    present = presence > 0.5  # (B, 3)
    ok = ~(req[None, :, :] & ~present[:, None, :]).any(-1)  # (B, E)
    return ok & present.any(1, keepdims=True)  # (B, E)


def drop_modalities(case: Case, removed: Sequence[str]) -> Case:
    """The case without the named modalities (what-if analysis)."""
    unknown = sorted(set(removed) - set(MODALITIES))
    if unknown:
        raise ModelError(f"unknown modality {unknown[0]!r}; choose from {', '.join(MODALITIES)}")
    changes: dict[str, object] = {}
    if "image" in removed:
        changes["image"] = None
    if "report" in removed:
        changes["report"] = None
    if "vitals" in removed:
        changes.update(vitals=None, sex=None)
    return replace(case, **changes) if changes else case


class BasePredictor(ABC):
    """Featurise -> gate -> selected experts -> `Prediction`; subclasses run the networks."""

    runtime: str

    def __init__(self, meta: ModelMeta) -> None:
        self.meta = meta
        self.cfg = meta.cfg
        self.model_version = meta.version
        self.weights_sha256 = meta.weights_sha256
        # The tokenizer re-sets truncation on every call, so concurrent featurisation races.
        self._featurize_lock = threading.Lock()

    @property
    def expert_names(self) -> tuple[str, ...]:
        return self.cfg.experts

    @property
    def labels(self) -> tuple[str, ...]:
        return self.cfg.labels

    # -- the networks (one batch in, raw logits out) ------------------------------------
    @abstractmethod
    def gate_logits(self, x: ModelInputs) -> np.ndarray:
        """Raw router logits (B, E), before masking."""

    @abstractmethod
    def expert_logits(self, name: str, x: ModelInputs) -> np.ndarray:
        """Raw logits (B, C) of expert `name` on every row of `x`."""

    # -- shared flow ----------------------------------------------------------------------
    def featurize(self, cases: Sequence[Case]) -> ModelInputs:
        with self._featurize_lock:
            return featurize(cases, self.meta.tokenizer, self.cfg)

    def mixture(self, x: ModelInputs, *, top_k: int | None = None,
                expert_mask: np.ndarray | None = None, dense: bool = False) -> Mixture:
        """Route and run only the selected experts, each on the rows that selected it.

        Args:
            x: a featurised batch.
            top_k: experts per case (default: the model's).
            expert_mask: (E,) bool, False removes an expert like an absent modality.
            dense: run every available expert, weighted by its full gate softmax.
        """
        available = self.available(x, expert_mask)  # (B, E)
        raw = self.gate_logits(x)  # (B, E)
        g = route(torch.from_numpy(raw), torch.from_numpy(available), self._k(top_k), dense=dense,
                  temperature=self.cfg.gate_temperature)
        weights = g.weights.numpy()  # (B, E)
        ran = available if dense else weights > 0  # (B, E)
        logits = np.zeros((len(x), len(self.expert_names), self.cfg.n_classes), np.float32)  # (B, E, C)
        for i, name in enumerate(self.expert_names):
            rows = np.flatnonzero(ran[:, i])  # (n,) the cases that run expert i
            if rows.size:
                logits[rows, i] = self.expert_logits(name, self.select_rows(x, rows))
        return mix(g.probs.numpy(), weights, g.selected.numpy(), logits, ran, self.cfg.temperature)

    def predict(self, cases: Sequence[Case], *, top_k: int | None = None,
                started: Sequence[float] | None = None,
                expert_mask: np.ndarray | None = None) -> list[Prediction]:
        """Diagnose a batch of cases.

        Args:
            cases: de-identified cases from intake.
            top_k: experts per case (default: the model's).
            started: per case, the `time.perf_counter()` at which its intake began, so
                `latency_ms` covers intake too; default: now.
            expert_mask: (E,) bool, False removes an expert (what-if).

        Returns:
            One `Prediction` per case, in order.
        """
        now = time.perf_counter()
        starts = [now] * len(cases) if started is None else list(started)
        if len(starts) != len(cases):
            raise ModelError("predict needs one start time per case")
        x = self.featurize(cases)
        m = self.mixture(x, top_k=top_k, expert_mask=expert_mask)
        out = []
        for i, case in enumerate(cases):
            latency = (time.perf_counter() - starts[i]) * 1000.0
            out.append(to_prediction(
                m, i, case=case.case_id, labels=self.labels, experts=self.expert_names,
                modalities=model_modalities(case), rule=self.meta.abstention,
                model_version=self.model_version, runtime=self.runtime, latency_ms=latency))
        return out

    def what_if(self, case: Case, *, removed_experts: Sequence[str] = (),
                removed_modalities: Sequence[str] = (), top_k: int | None = None) -> Prediction:
        """Re-run one case with experts masked (before top-k) and/or modalities dropped."""
        self._check_experts(removed_experts)
        reduced = drop_modalities(case, removed_modalities)
        if not any(model_modalities(reduced).values()):
            raise ModelError("Removing those inputs leaves nothing to diagnose from; keep at least one.")
        mask = np.array([n not in removed_experts for n in self.expert_names])  # (E,)
        return self.predict([reduced], top_k=top_k, expert_mask=mask)[0]

    def expert_opinion(self, case: Case, expert_name: str) -> ExpertOpinion:
        """What one expert alone says about a case, selected or not (for display only)."""
        self._check_experts([expert_name])
        x = self.featurize([case])
        if not self.available(x, None)[0, self.expert_names.index(expert_name)]:
            needs = " and ".join(EXPERTS[expert_name].requires) or "one input"
            raise ModelError(f"The expert {expert_name!r} needs the {needs}, which this case does not have.")
        probs = softmax(self.expert_logits(expert_name, x), self.cfg.temperature)[0]  # (C,)
        return ExpertOpinion(modality=EXPERTS[expert_name].modality,
                             probabilities={c: round(float(p), 6) for c, p in zip(self.labels, probs, strict=True)})

    # -- helpers --------------------------------------------------------------------------
    def select_rows(self, x: ModelInputs, rows: np.ndarray) -> ModelInputs:
        """The cases `rows` of a batch (the batch itself when that is all of it)."""
        return x if rows.size == len(x) else x.select(torch.from_numpy(rows))

    def _k(self, top_k: int | None) -> int:
        k = self.cfg.top_k if top_k is None else int(top_k)
        if k < 1:
            raise ModelError(f"top-k must be at least 1, got {k}")
        return k

    def _check_experts(self, names: Sequence[str]) -> None:
        unknown = sorted(set(names) - set(self.expert_names))
        if unknown:
            raise ModelError(f"unknown expert {unknown[0]!r}; this model has {', '.join(self.expert_names)}")

    def available(self, x: ModelInputs, expert_mask: np.ndarray | None = None) -> np.ndarray:
        """(B, E) bool: experts a case may use (modality present, not masked)."""
        available = availability(x.presence.numpy(), self.expert_names)  # (B, E)
        if expert_mask is not None:
            available = available & np.asarray(expert_mask, bool).reshape(1, -1)  # (B, E)
        if not available.any(1).all():
            raise ModelError("No expert is left for this case; put back an expert or an input.")
        return available


def load_predictor(model_dir: Path, runtime: str = "auto", *, cache_dir: Path | None = None,
                   providers: Sequence[str] | None = None) -> BasePredictor:
    """Load the model for inference with the requested runtime.

    Args:
        model_dir: the trained model folder (weights, config, tokenizer).
        runtime: "onnx", "torch", or "auto" (ONNX if its graphs exist or can be exported,
            else PyTorch).
        cache_dir: where graphs go when `model_dir` is read-only (default: the data dir's cache).
        providers: ONNX Runtime providers to try (default: CUDA when available, then CPU).

    Raises:
        ConfigError: unknown runtime name.
        ModelError: the model cannot be loaded (or, for "onnx", exported or opened).
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    model_dir = Path(model_dir)
    if runtime == "torch":
        from moe_app.runtime.torch import TorchPredictor

        return TorchPredictor.load(model_dir)
    try:
        from moe_app.runtime.export import ensure_graphs
        from moe_app.runtime.onnx import OnnxPredictor

        graphs = ensure_graphs(model_dir, cache_dir=cache_dir)
        return OnnxPredictor.load(model_dir, graphs, providers=providers)
    except (ModelError, ImportError) as err:
        if runtime == "onnx":
            if isinstance(err, ImportError):
                raise ModelError("onnxruntime is not installed; run `make install` or use --runtime torch") from None
            raise
        log.warning("ONNX runtime unavailable (%s); falling back to PyTorch", err)
    from moe_app.runtime.torch import TorchPredictor

    return TorchPredictor.load(model_dir)


def read_meta(model_dir: Path) -> ModelMeta:
    """Config, tokenizer, abstention rule and weights hash of a model folder (no weights loaded)."""
    import json

    from moe_app.model.io import ABSTENTION, CONFIG, WEIGHTS
    from moe_app.model.text import load_tokenizer, sha256_file

    for name in (WEIGHTS, CONFIG):
        if not (model_dir / name).is_file():
            raise ModelError(f"the model folder {model_dir} has no {name}; train one with `moe-app train`")
    cfg = MoEConfig.from_json((model_dir / CONFIG).read_text())
    rule = AbstentionRule()
    if (model_dir / ABSTENTION).is_file():
        try:
            rule = AbstentionRule(**json.loads((model_dir / ABSTENTION).read_text()))
        except (ValueError, TypeError) as err:
            raise ModelError(f"the abstention rule in {model_dir} cannot be read ({err})") from None
    return ModelMeta(cfg=cfg, tokenizer=load_tokenizer(model_dir), abstention=rule,
                     weights_sha256=sha256_file(model_dir / WEIGHTS), model_dir=model_dir)
