"""The Mixture of Experts: gate + expert pool + exact mixture of expert probabilities.

    p(y | x) = sum_{e in topk} w_e(x) * softmax(z_e(x) / T)

w are the renormalised top-k gate weights, z_e the logits of expert e and T the calibration
temperature (fitted on validation, 1 until then). Because the mixture is linear in the expert
probabilities, `contributions[b, e, c] = w[b, e] * p_e[b, c]` add up exactly to `probs[b, c]`;
temperature is applied to every expert's logits (not to the mixture), so calibration keeps
that decomposition exact for every consumer (torch, ONNX, explanations).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from moe_app.labels import MODALITIES
from moe_app.model.config import MoEConfig
from moe_app.model.experts import EXPERTS, build_expert
from moe_app.model.features import ModelInputs
from moe_app.model.gate import Gate, route


@dataclass(frozen=True)
class MoEOutput:
    probs: torch.Tensor  # (B, C) mixture probabilities (calibrated)
    gate_logits: torch.Tensor  # (B, E) masked router logits (-inf = unavailable)
    gate_probs: torch.Tensor  # (B, E) full softmax over available experts
    weights: torch.Tensor  # (B, E) renormalised top-k weights, exactly 0 for unselected experts
    selected: torch.Tensor  # (B, k) selected expert indices, best first, -1 = padding
    expert_logits: torch.Tensor  # (B, E, C) raw logits, 0 where the expert did not run
    expert_probs: torch.Tensor  # (B, E, C) softmax(logits / T), 0 where the expert did not run
    ran: torch.Tensor  # (B, E) bool, which experts were actually computed for each case
    available: torch.Tensor  # (B, E) bool, experts allowed for the case (modality present, not masked)
    contributions: torch.Tensor  # (B, E, C) weights[..., None] * expert_probs; sums over E to probs


class MoEModel(nn.Module):
    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gate = Gate(cfg)
        self.experts = nn.ModuleDict({name: build_expert(name, cfg) for name in cfg.experts})
        # (E, 3) which modalities each expert needs; an all-zero row means "any one modality".
        req = [[float(m in EXPERTS[n].requires) for m in MODALITIES] for n in cfg.experts]
        self.register_buffer("requires", torch.tensor(req), persistent=False)

    @property
    def expert_names(self) -> tuple[str, ...]:
        return self.cfg.experts

    def availability(self, presence: torch.Tensor) -> torch.Tensor:
        """(B, E) bool: every required modality present (and at least one modality at all)."""
        missing = (self.requires.unsqueeze(0) * (1 - presence).unsqueeze(1)).sum(-1)  # (B, E)
        return (missing == 0) & (presence.sum(1, keepdim=True) > 0)  # (B, E)

    def run_expert(self, name: str, x: ModelInputs) -> torch.Tensor:
        """Logits (B, C) of one expert on every row of `x` (e.g. the opinion of an unused expert)."""
        expert = self.experts[name]
        if name == "report_findings" and x.report_pooled is not None:
            return expert.head(x.report_pooled)  # frozen-encoder cache used in training
        return expert(**x.kwargs(expert.input_names))

    def expert_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated expert probabilities from logits (..., C): softmax(logits / T)."""
        return F.softmax(logits / self.cfg.temperature, dim=-1)

    def forward(self, x: ModelInputs, top_k: int | None = None, expert_mask: torch.Tensor | None = None,
                dense: bool = False, run_all: bool = False) -> MoEOutput:
        """Route each case to its top-k experts and mix their probabilities.

        Args:
            x: a batch from `featurize`.
            top_k: experts per case (default `cfg.top_k`).
            expert_mask: (E,) or (B, E) bool, False removes an expert exactly as an absent
                modality does (what-if analysis).
            dense: every available expert gets its full softmax gate weight (dense baseline).
            run_all: compute every available expert even if unselected (training needs this
                for the per-expert auxiliary loss; inference leaves it False so unselected
                experts are never run).
        """
        b, e, c = len(x), len(self.cfg.experts), self.cfg.n_classes
        available = self.availability(x.presence)  # (B, E)
        if expert_mask is not None:
            available = available & expert_mask.to(torch.bool).expand(b, e)  # (B, E)
        raw = self.gate(**x.kwargs(self.gate.input_names))  # (B, E)
        noise = self.cfg.noise_std if self.training else 0.0
        g = route(raw, available, top_k or self.cfg.top_k, noise_std=noise, dense=dense,
                  temperature=self.cfg.gate_temperature)
        ran = available if (run_all or dense) else g.weights > 0  # (B, E)
        logits = raw.new_zeros(b, e, c)  # (B, E, C)
        for i, name in enumerate(self.cfg.experts):
            rows = ran[:, i].nonzero().squeeze(1)  # (n,) the cases that run expert i
            if rows.numel() == 0:
                continue
            logits = logits.index_put((rows, torch.full_like(rows, i)), self.run_expert(name, x.select(rows)))
        expert_probs = self.expert_probs(logits) * ran.unsqueeze(-1)  # (B, E, C)
        contributions = g.weights.unsqueeze(-1) * expert_probs  # (B, E, C)
        return MoEOutput(
            probs=contributions.sum(1),  # (B, C)
            gate_logits=g.logits, gate_probs=g.probs, weights=g.weights, selected=g.selected,
            expert_logits=logits, expert_probs=expert_probs, ran=ran, available=available,
            contributions=contributions,
        )


def count_parameters(model: MoEModel, weights: torch.Tensor | None = None) -> dict[str, object]:
    """Parameter counts: per expert, gate, total, and active per case.

    Args:
        model: the MoE.
        weights: optional (B, E) gate weights; experts with weight > 0 count as active.

    Returns:
        {"gate": n, "experts": {name: n}, "experts_total": n, "frozen": n, and, with weights,
        "active_per_case": (B,) tensor of expert parameters run per case}.
    """
    def n(module: nn.Module, trainable: bool | None = None) -> int:
        return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)

    per = {name: n(m) for name, m in model.experts.items()}
    out: dict[str, object] = {"gate": n(model.gate), "experts": per, "experts_total": sum(per.values()),
                              "frozen": n(model, trainable=False)}
    if weights is not None:
        sizes = torch.tensor([per[name] for name in model.cfg.experts], dtype=torch.float64)  # (E,)
        out["active_per_case"] = ((weights > 0).double() * sizes).sum(1)  # (B,)
    return out
