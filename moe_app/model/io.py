"""Checkpoint folders: the one place in the model package that reads or writes files.

A model folder holds:
    model.safetensors   trained weights (a frozen pretrained encoder is not copied: it stays
                        in its own package/folder and its sha256 is checked when loaded)
    config.json         `MoEConfig` (includes the calibration temperature)
    tokenizer.json      the report tokenizer
    abstention.json     the abstention rule fitted on validation
    metrics.json, model_card.md   written by training (not needed to run the model)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from moe_app.errors import ModelError
from moe_app.model.config import MoEConfig
from moe_app.model.moe import MoEModel
from moe_app.model.text import ReportTokenizer, load_tokenizer, sha256_file

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
ABSTENTION = "abstention.json"


@dataclass(frozen=True)
class AbstentionRule:
    """Flag a case as uncertain when the calibrated top probability is below `threshold`."""

    threshold: float = 0.0
    rule: str = "max_prob_below"
    val_coverage: float = 1.0  # share of validation cases kept (not flagged)
    val_accuracy_kept: float = float("nan")

    def uncertain(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, C) probabilities -> (B,) bool."""
        return probs.max(-1).values < self.threshold


@dataclass
class LoadedModel:
    model: MoEModel  # in eval mode
    cfg: MoEConfig
    tokenizer: ReportTokenizer
    abstention: AbstentionRule
    weights_sha256: str
    model_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def temperature(self) -> float:
        return self.cfg.temperature

    @property
    def version(self) -> str:
        return f"moe-{self.weights_sha256[:12]}"


def trainable_state(model: MoEModel) -> dict[str, torch.Tensor]:
    """State dict without frozen pretrained encoder weights, contiguous (safetensors needs it)."""
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if k not in frozen}


def save_model(model: MoEModel, tokenizer: ReportTokenizer, folder: Path,
               abstention: AbstentionRule | None = None) -> str:
    """Write weights, config, tokenizer (and abstention rule). Returns the weights sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model), str(folder / WEIGHTS), metadata={"format": "pt"})
    (folder / WEIGHTS).chmod(0o644)  # safetensors writes 0600; the app may run as another user
    (folder / CONFIG).write_text(model.cfg.to_json() + "\n")
    tokenizer.save(folder)
    if abstention is not None:
        (folder / ABSTENTION).write_text(json.dumps(abstention.__dict__, indent=2) + "\n")
    return sha256_file(folder / WEIGHTS)


def load_model(model_dir: Path) -> LoadedModel:
    """Load a model folder for inference.

    Args:
        model_dir: folder written by `moe-app train` (e.g. assets/model).

    Returns:
        A `LoadedModel` with the model in eval mode.

    Raises:
        ModelError: the folder is missing, incomplete, or does not match its config.
    """
    model_dir = Path(model_dir)
    for name in (WEIGHTS, CONFIG):
        if not (model_dir / name).is_file():
            raise ModelError(f"the model folder {model_dir} has no {name}; train one with `moe-app train`")
    cfg = MoEConfig.from_json((model_dir / CONFIG).read_text())
    tokenizer = load_tokenizer(model_dir)
    model = MoEModel(cfg)
    try:
        state = load_file(str(model_dir / WEIGHTS))
    except Exception as err:  # safetensors raises several types for a damaged file
        raise ModelError(f"cannot read the model weights in {model_dir} ({err})") from None
    expected = trainable_state(model)
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelError(f"weights do not match config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.load_state_dict(state, strict=False)
    model.eval()
    abst = AbstentionRule()
    if (model_dir / ABSTENTION).is_file():
        abst = AbstentionRule(**json.loads((model_dir / ABSTENTION).read_text()))
    return LoadedModel(model=model, cfg=cfg, tokenizer=tokenizer, abstention=abst,
                       weights_sha256=sha256_file(model_dir / WEIGHTS), model_dir=model_dir)
