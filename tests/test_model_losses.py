"""Loss functions against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from moe_app.model.losses import (
    expert_ce,
    load_balancing_loss,
    mixture_nll,
    router_z_loss,
    total_loss,
)


def test_mixture_nll_by_hand() -> None:
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]])
    y = torch.tensor([0, 1])
    assert float(mixture_nll(probs, y)) == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2)


def test_load_balancing_by_hand() -> None:
    # 2 cases, 3 experts, top-2: assignments e0 twice, e1 once, e2 once -> f = (0.5, 0.25, 0.25)
    gate_probs = torch.tensor([[0.6, 0.3, 0.1], [0.4, 0.1, 0.5]])
    selected = torch.tensor([[0, 1], [2, 0]])
    p = (0.5, 0.2, 0.3)
    expected = 3 * (0.5 * p[0] + 0.25 * p[1] + 0.25 * p[2])
    assert float(load_balancing_loss(gate_probs, selected)) == pytest.approx(expected)


def test_load_balancing_is_one_when_uniform_and_ignores_padding() -> None:
    gate_probs = torch.full((4, 4), 0.25)
    selected = torch.tensor([[0, 1], [2, 3], [0, 1], [2, 3]])
    assert float(load_balancing_loss(gate_probs, selected)) == pytest.approx(1.0)
    padded = torch.tensor([[0, -1], [1, -1]])
    gp = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(load_balancing_loss(gp, padded)) == pytest.approx(2 * (0.5 * 0.5 + 0.5 * 0.5))


def test_router_z_loss_by_hand_and_masked() -> None:
    logits = torch.tensor([[0.0, 0.0], [1.0, float("-inf")]])
    expected = (math.log(2.0) ** 2 + 1.0**2) / 2
    assert float(router_z_loss(logits)) == pytest.approx(expected)


def test_expert_ce_only_counts_experts_that_ran() -> None:
    logits = torch.tensor([[[0.0, 0.0], [5.0, -5.0]]])  # (B=1, E=2, C=2)
    ran = torch.tensor([[True, False]])
    assert float(expert_ce(logits, ran, torch.tensor([0]))) == pytest.approx(math.log(2.0))


def test_total_loss_weights_terms() -> None:
    probs = torch.tensor([[0.5, 0.5]])
    logits = torch.tensor([[0.0, 0.0]])
    gp = torch.tensor([[0.5, 0.5]])
    sel = torch.tensor([[0, 1]])
    el = torch.zeros(1, 2, 2)
    ran = torch.ones(1, 2, dtype=torch.bool)
    t = total_loss(probs, logits, gp, sel, el, ran, torch.tensor([0]), w_balance=0.1, w_z=0.01, w_expert=0.5)
    expected = math.log(2) + 0.1 * 1.0 + 0.01 * math.log(2) ** 2 + 0.5 * math.log(2)
    assert float(t["loss"]) == pytest.approx(expected)


def test_routing_supervision_by_hand() -> None:
    from moe_app.model.losses import routing_supervision

    el = torch.zeros(1, 2, 2)  # both experts give p(y) = 0.5 -> target q = (0.5, 0.5)
    gl = torch.tensor([[0.0, math.log(3.0)]])
    ran = torch.ones(1, 2, dtype=torch.bool)
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert float(routing_supervision(gl, el, ran, torch.tensor([0]))) == pytest.approx(expected)
    masked = torch.tensor([[0.0, float("-inf")]])
    only_first = torch.tensor([[True, False]])
    assert float(routing_supervision(masked, el, only_first, torch.tensor([0]))) == pytest.approx(0.0)


def test_routing_supervision_prefers_the_right_expert() -> None:
    from moe_app.model.losses import routing_supervision

    el = torch.tensor([[[4.0, 0.0], [0.0, 4.0]]])  # expert 0 right for class 0
    ran = torch.ones(1, 2, dtype=torch.bool)
    good = routing_supervision(torch.tensor([[3.0, 0.0]]), el, ran, torch.tensor([0]))
    bad = routing_supervision(torch.tensor([[0.0, 3.0]]), el, ran, torch.tensor([0]))
    assert float(good) < float(bad)
