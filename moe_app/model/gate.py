"""The gating network (router): cheap features of every present modality -> a small MLP (or one nn.Linear).

Routing follows Mixtral / Switch Transformer: softmax over experts, top-k, renormalise over
the selected ones. Experts whose required modality is absent (or that the caller masks out)
get logit -inf before the softmax, so their probability and weight are exactly 0 and they are
never selected. Noisy gating (Shazeer et al. 2017, "Outrageously large neural networks") adds
Gaussian noise to the logits in training only; we use a fixed noise std rather than the
paper's learned one, which is enough for exploration at this scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from moe_app.model.config import MoEConfig
from moe_app.model.experts import masked_mean


@dataclass(frozen=True)
class GateOutput:
    logits: torch.Tensor  # (B, E) router logits, -inf for unavailable experts (noise included in training)
    probs: torch.Tensor  # (B, E) full softmax over available experts
    selected: torch.Tensor  # (B, k) expert indices, best first; -1 where fewer than k are available
    weights: torch.Tensor  # (B, E) renormalised weights of the selected experts, 0 elsewhere


class Gate(nn.Module):
    """Router over E experts. Reads all five `ModelInputs` tensors but nothing expensive."""

    input_names = ("image", "input_ids", "attention_mask", "vitals", "presence")

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_bag = nn.Embedding(cfg.vocab_size, cfg.token_dim, padding_idx=0)
        n_features = cfg.gate_thumb**2 + cfg.token_dim + cfg.n_vitals_features + 3
        n_experts = len(cfg.experts)
        # gate_hidden = 0: one linear layer (the first shipped model); > 0: one hidden layer, so the
        # router can combine cues ("report mentions a pleural line AND the film is present")
        self.router = (nn.Linear(n_features, n_experts) if cfg.gate_hidden <= 0 else
                       nn.Sequential(nn.Linear(n_features, cfg.gate_hidden), nn.GELU(),
                                     nn.Linear(cfg.gate_hidden, n_experts)))

    def features(self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 vitals: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        """Cheap gate features, (B, F): thumbnail, bag of tokens, vitals vector, presence."""
        thumb = F.adaptive_avg_pool2d(image, self.cfg.gate_thumb).flatten(1)  # (B, g*g)
        tokens = masked_mean(self.token_bag(input_ids), attention_mask) * presence[:, 1:2]  # (B, D)
        return torch.cat([thumb, tokens, vitals, presence], dim=1)  # (B, F)

    def forward(self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                vitals: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        """Raw router logits (B, E), before masking (this is what the ONNX gate graph outputs)."""
        return self.router(self.features(image, input_ids, attention_mask, vitals, presence))  # (B, E)


def route(logits: torch.Tensor, available: torch.Tensor, top_k: int, noise_std: float = 0.0,
          dense: bool = False, temperature: float = 1.0) -> GateOutput:
    """Mask, (optionally) add noise, softmax, top-k, renormalise.

    Args:
        logits: raw router logits (B, E).
        available: (B, E) bool, False for experts that must not be selected.
        top_k: experts to select per case (fewer if fewer are available).
        noise_std: std of Gaussian noise added to the logits (pass 0 at inference).
        dense: weight every available expert by its full softmax probability (dense baseline).
        temperature: the gate's calibration temperature (fitted on validation after training):
            the softmax is taken over logits / temperature. It never changes which experts are
            selected (same order), only how the weight is shared between them.
    """
    assert available.any(1).all(), "every case needs at least one available expert"
    if noise_std > 0:
        logits = logits + torch.randn_like(logits) * noise_std
    logits = logits.masked_fill(~available, float("-inf"))  # (B, E)
    probs = F.softmax(logits / temperature, dim=-1)  # (B, E)
    k = logits.shape[1] if dense else min(top_k, logits.shape[1])
    top_p, top_i = torch.topk(probs, k, dim=-1)  # (B, k)
    valid = top_p > 0  # (B, k) fewer than k experts available -> padding slots
    top_w = top_p / top_p.sum(-1, keepdim=True)  # (B, k) renormalise over the selected ones
    weights = torch.zeros_like(probs).scatter(1, top_i, top_w * valid)  # (B, E)
    selected = torch.where(valid, top_i, torch.full_like(top_i, -1))  # (B, k)
    return GateOutput(logits=logits, probs=probs, selected=selected, weights=weights)
