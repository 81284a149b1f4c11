"""Training losses of the MoE, as plain functions that can be tested on their own.

References:
    Fedus, Zoph, Shazeer (2021), "Switch Transformers", eq. (4)-(6): load-balancing loss.
    Zoph et al. (2022), "ST-MoE: Designing Stable and Transferable Sparse Expert Models",
    eq. (5): router z-loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


def mixture_nll(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the mixture: mean over cases of -log p_mix(y).

    Args:
        probs: (B, C) mixture probabilities (rows sum to 1).
        targets: (B,) class indices.
    """
    p = probs.gather(1, targets.view(-1, 1)).squeeze(1)  # (B,)
    return -(p.clamp(min=EPS)).log().mean()


def load_balancing_loss(gate_probs: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """Switch Transformer load-balancing loss, E * sum_e f_e * P_e.

    f_e is the fraction of the top-k assignments that went to expert e (each case makes k
    assignments; padding slots -1 are ignored) and P_e the mean gate probability of expert e.
    It equals 1 when routing is uniform and grows as it concentrates. Only P carries a gradient.

    Args:
        gate_probs: (B, E) full softmax gate probabilities.
        selected: (B, k) selected expert indices, -1 for padding.
    """
    n_experts = gate_probs.shape[1]
    valid = selected >= 0  # (B, k)
    one_hot = F.one_hot(selected.clamp(min=0), n_experts) * valid.unsqueeze(-1)  # (B, k, E)
    f = one_hot.sum((0, 1)).to(gate_probs.dtype) / valid.sum().clamp(min=1)  # (E,)
    p = gate_probs.mean(0)  # (E,)
    return n_experts * (f * p).sum()


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE router z-loss, mean over cases of logsumexp(logits)^2.

    Masked experts (logit -inf) are left out of the logsumexp, which is what
    `torch.logsumexp` does with -inf entries; any other non-finite value is an error.
    """
    assert not torch.isnan(logits).any() and not (logits == float("inf")).any(), "router logits must be finite or -inf"
    return torch.logsumexp(logits, dim=-1).pow(2).mean()


def expert_ce(expert_logits: torch.Tensor, ran: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Auxiliary loss: mean cross-entropy of every expert that ran, on its own prediction.

    Without it an expert only learns from the cases the gate sends it, and its stand-alone
    opinion (shown to clinicians, and used when the gate re-routes in a what-if) is not a
    diagnosis. With it every expert is trained to diagnose from its own inputs.

    Args:
        expert_logits: (B, E, C) raw logits.
        ran: (B, E) bool, which experts were computed for which case.
        targets: (B,) class indices.
    """
    b, e, c = expert_logits.shape
    ce = F.cross_entropy(expert_logits.reshape(b * e, c), targets.repeat_interleave(e), reduction="none")  # (B*E,)
    mask = ran.reshape(b * e).to(ce.dtype)  # (B*E,)
    return (ce * mask).sum() / mask.sum().clamp(min=1)


def routing_supervision(gate_logits: torch.Tensor, expert_logits: torch.Tensor, ran: torch.Tensor,
                        targets: torch.Tensor, tau: float = 0.5, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy from a "which expert is right here" target to the gate distribution.

    The mixture loss only tells the gate about the experts it already selected; unselected
    experts are invisible to it, so routing can lock in early on whichever experts learned
    first. In training every available expert runs anyway (for `expert_ce`), so we know how
    well each one predicts this case: q_e ∝ exp(log p_e(y) / tau) over the experts that ran
    (no gradient through q). The gate is trained towards q, i.e. towards the experts that are
    right for this kind of case, which is the specialisation clinicians are shown.

    Args:
        gate_logits: (B, E) masked router logits (-inf = unavailable).
        expert_logits: (B, E, C) raw expert logits.
        ran: (B, E) bool, experts computed for each case.
        targets: (B,) class indices.
        tau: temperature of the target; smaller = sharper.
        bias: optional (B, E) scores added to log p_e(y) / tau before the softmax (a preference
            for some experts, see `routing_bias`); None = no preference.
    """
    logp_y = F.log_softmax(expert_logits.detach(), -1).gather(2, targets.view(-1, 1, 1).expand(-1, ran.shape[1], 1))
    scores = logp_y.squeeze(2) / tau  # (B, E)
    if bias is not None:
        scores = scores + bias
    scores = scores.masked_fill(~ran, float("-inf"))  # (B, E)
    q = F.softmax(scores, dim=-1)  # (B, E)
    log_g = F.log_softmax(gate_logits, dim=-1)  # (B, E)
    return -torch.where(q > 0, q * log_g, torch.zeros_like(q)).sum(-1).mean()


def routing_bias(targets: torch.Tensor, modalities: tuple[str, ...], labels: tuple[str, ...],
                 multimodal: float = 0.0, prior: tuple[tuple[str, str, float], ...] = (),
                 names: tuple[str, ...] = ()) -> torch.Tensor | None:
    """(B, E) preference added to the routing target's scores, or None when there is none.

    Args:
        targets: (B,) class indices.
        modalities: modality of each expert ("image", "report", "vitals", "multimodal").
        labels: class names in index order.
        multimodal: added for every multimodal expert (< 0 prefers the single-modality specialists).
        prior: (label, who, bonus) triples, added on that label's cases for the experts of modality
            `who`, or for the expert named `who` (`names` gives the expert names).
        names: expert names in gate order (only needed when a prior names an expert).
    """
    if multimodal == 0.0 and not prior:
        return None
    mods = list(modalities)
    table = torch.zeros(len(labels), len(mods))  # (C, E)
    table[:, [i for i, m in enumerate(mods) if m == "multimodal"]] += multimodal
    for label, who, bonus in prior:
        table[labels.index(label), [i for i, m in enumerate(mods) if who in (m, names[i] if names else None)]] += bonus
    return table[targets]  # (B, E)


def total_loss(probs: torch.Tensor, gate_logits: torch.Tensor, gate_probs: torch.Tensor,
               selected: torch.Tensor, expert_logits: torch.Tensor, ran: torch.Tensor,
               targets: torch.Tensor, w_balance: float, w_z: float, w_expert: float,
               w_route: float = 0.0, tau_route: float = 0.5,
               route_bias: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """All terms and their weighted sum ("loss")."""
    terms = {
        "nll": mixture_nll(probs, targets),
        "balance": load_balancing_loss(gate_probs, selected),
        "z": router_z_loss(gate_logits),
        "expert": expert_ce(expert_logits, ran, targets),
    }
    loss = terms["nll"] + w_balance * terms["balance"] + w_z * terms["z"] + w_expert * terms["expert"]
    if w_route > 0:
        terms["route"] = routing_supervision(gate_logits, expert_logits, ran, targets, tau_route, route_bias)
        loss = loss + w_route * terms["route"]
    terms["loss"] = loss
    return terms
