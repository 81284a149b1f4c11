"""Optional architecture and routing-target settings (defaults keep the original behaviour)."""

from __future__ import annotations

import math

import pytest
import torch

from moe_app.labels import LABELS
from moe_app.model.config import MoEConfig
from moe_app.model.experts import ImageTextureExpert
from moe_app.model.losses import routing_bias, routing_supervision
from moe_app.model.moe import MoEModel, MoEOutput, count_parameters

MODS = ("image", "image", "report", "report", "vitals", "multimodal")
V2 = {"texture_stem": 2, "texture_dilation": 2, "texture_sides": True, "shape_channels": 6,
      "cross_width": 16, "cross_pool": 4, "bert_layers": 1, "bert_hidden": 56}


def test_routing_bias_none_by_default() -> None:
    assert routing_bias(torch.tensor([0, 1]), MODS, LABELS) is None


def test_routing_bias_table() -> None:
    y = torch.tensor([LABELS.index("pneumothorax"), LABELS.index("normal")])
    bias = routing_bias(y, MODS, LABELS, multimodal=-1.0, prior=(("pneumothorax", "image", 2.0),))
    assert bias is not None
    assert bias.tolist() == [[2.0, 2.0, 0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0, 0.0, -1.0]]


def test_routing_supervision_bias_by_hand() -> None:
    # two experts both put p=0.5 on the true class; a bias of log(3) makes the target (0.75, 0.25)
    logits = torch.zeros(1, 2, 2)
    ran = torch.ones(1, 2, dtype=torch.bool)
    gate = torch.zeros(1, 2)
    y = torch.tensor([0])
    bias = torch.tensor([[math.log(3.0), 0.0]])
    expected = -(0.75 * math.log(0.5) + 0.25 * math.log(0.5))
    assert float(routing_supervision(gate, logits, ran, y, 1.0, bias)) == pytest.approx(expected)
    gate2 = torch.tensor([[math.log(3.0), 0.0]])  # gate already equals the target: the cross-entropy is its entropy
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert float(routing_supervision(gate2, logits, ran, y, 1.0, bias)) == pytest.approx(h)


def test_config_round_trip_with_prior() -> None:
    cfg = MoEConfig(route_prior=(("pneumothorax", "image", 2.0),), **V2)
    assert MoEConfig.from_json(cfg.to_json()) == cfg


def test_smaller_experts_keep_top2_under_half() -> None:
    pc = count_parameters(MoEModel(MoEConfig(vocab_size=564, **V2)))
    sizes = sorted(pc["experts"].values(), reverse=True)
    assert sizes[0] + sizes[1] <= pc["experts_total"] / 2


@pytest.mark.parametrize("sides", [False, True])
def test_texture_expert_variants_shapes(sides: bool) -> None:
    cfg = MoEConfig(texture_stem=2, texture_dilation=2, texture_sides=sides)
    expert = ImageTextureExpert(cfg).eval()
    x = torch.rand(2, 1, cfg.image_size, cfg.image_size)
    out = expert(x)
    assert out.shape == (2, cfg.n_classes) and torch.isfinite(out).all()
    # flipping the image left/right changes a side-aware head's logits
    if sides:
        assert not torch.allclose(out, expert(x.flip(-1)))


def test_mlp_gate_routes_and_masks_like_the_linear_one() -> None:
    torch.manual_seed(0)
    cfg = MoEConfig(gate_hidden=16, image_size=32, vocab_size=50)
    model = MoEModel(cfg).eval()
    assert isinstance(model.gate.router, torch.nn.Sequential)
    b = 4
    from moe_app.model.features import ModelInputs

    x = ModelInputs(image=torch.rand(b, 1, 32, 32), input_ids=torch.randint(1, 50, (b, 8)),
                    attention_mask=torch.ones(b, 8, dtype=torch.long), vitals=torch.rand(b, cfg.n_vitals_features),
                    presence=torch.tensor([[1.0, 0.0, 1.0]] * b))
    out = model(x)
    report = [i for i, n in enumerate(cfg.experts) if n.startswith("report")]
    assert (out.weights[:, report] == 0).all()  # absent report: its experts get weight 0
    assert torch.allclose(out.weights.sum(1), torch.ones(b))
    assert ((out.weights > 0).sum(1) == cfg.top_k).all()


def test_routing_prior_can_name_one_expert() -> None:
    names = MoEConfig().experts
    y = torch.tensor([LABELS.index("pneumothorax")])
    prior = (("pneumothorax", "image", 1.0), ("pneumothorax", "image_texture", 0.5))
    bias = routing_bias(y, MODS, LABELS, prior=prior, names=names)
    assert bias is not None and bias.tolist() == [[1.5, 1.0, 0.0, 0.0, 0.0, 0.0]]


def test_routing_prior_with_unknown_names_is_refused() -> None:
    from moe_app.errors import ModelError

    with pytest.raises(ModelError, match="route_prior"):
        MoEConfig(route_prior=(("pneumothorax", "image_colour", 1.0),))
    with pytest.raises(ModelError, match="route_prior"):
        MoEConfig(route_prior=(("flu", "image", 1.0),))


def test_gate_temperature_keeps_selection_and_exact_decomposition() -> None:
    from moe_app.model.features import ModelInputs

    torch.manual_seed(1)
    cfg = MoEConfig(image_size=32, vocab_size=50, gate_hidden=8)
    model = MoEModel(cfg).eval()
    b = 6
    x = ModelInputs(image=torch.rand(b, 1, 32, 32), input_ids=torch.randint(1, 50, (b, 8)),
                    attention_mask=torch.ones(b, 8, dtype=torch.long), vitals=torch.rand(b, cfg.n_vitals_features),
                    presence=torch.ones(b, 3))
    with torch.no_grad():
        base = model(x)
        model.cfg = cfg.replace(gate_temperature=0.3)
        sharp = model(x)
    assert torch.equal(base.weights > 0, sharp.weights > 0)  # same experts selected
    top_base = base.weights.max(1).values
    top_sharp = sharp.weights.max(1).values
    assert (top_sharp >= top_base - 1e-6).all() and (top_sharp > top_base).any()  # first choice trusted more
    assert torch.allclose(sharp.contributions.sum(1), sharp.probs, atol=1e-6)
    with pytest.raises(Exception, match="temperatures must be positive"):
        MoEConfig(gate_temperature=0.0)


def _two_expert_output(logits: torch.Tensor, first_gate_logit: float) -> MoEOutput:
    """A batch routed to both of two experts (gate logits (first_gate_logit, 0)), as `MoEModel` returns it."""
    n, _, c = logits.shape
    gate_logits = torch.stack([torch.full((n,), first_gate_logit), torch.zeros(n)], dim=1)
    weights = torch.softmax(gate_logits, -1)
    ran = torch.ones(n, 2, dtype=torch.bool)
    return MoEOutput(probs=torch.zeros(n, c), gate_logits=gate_logits, gate_probs=weights, weights=weights,
                     selected=torch.tensor([[0, 1]] * n), expert_logits=logits, expert_probs=torch.zeros(n, 2, c),
                     ran=ran, available=ran, contributions=torch.zeros(n, 2, c))


def test_fit_calibration_sharpens_an_underconfident_mixture() -> None:
    """A right, confident expert averaged 50/50 with a clueless one: T_g < 1 recovers the confidence."""
    from moe_app.train.evaluate import fit_calibration, mixture_at_temperature

    n, c = 200, 5
    y = torch.arange(n) % c
    good = torch.full((n, c), -4.0)
    good[torch.arange(n), y] = 4.0  # always right, p(y) ~ 0.99
    logits = torch.stack([good, torch.zeros(n, c)], dim=1)  # (n, 2, C): second expert uniform
    out = _two_expert_output(logits, first_gate_logit=1.0)  # the good one ranked first
    t, tg = fit_calibration(out, y)
    assert tg < 0.5
    nll = lambda p: float(-p[torch.arange(n), y].log().mean())  # noqa: E731
    assert nll(mixture_at_temperature(out, t, tg)) < nll(mixture_at_temperature(out, 1.0)) - 0.1


def test_config_json_without_newer_fields_means_the_old_behaviour() -> None:
    """A config.json written before the MLP gate and routing priors existed loads as it was trained."""
    import json

    raw = json.loads(MoEConfig().to_json())
    for name in ("gate_hidden", "texture_dilation", "shape_channels", "cross_width", "route_prior"):
        raw.pop(name)
    old = MoEConfig.from_json(json.dumps(raw))
    assert old.gate_hidden == 0 and old.route_prior == () and old.texture_dilation == 1
    assert isinstance(MoEModel(old.replace(vocab_size=64)).gate.router, torch.nn.Linear)
    assert MoEConfig.from_json(MoEConfig().to_json()) == MoEConfig()  # a current file keeps its values


def test_fit_calibration_never_flattens_the_gate() -> None:
    """When the gate's first choice is often wrong a flatter gate would fit better; T_g stays at most 1."""
    from moe_app.train.evaluate import fit_calibration

    n, c = 200, 5
    y = torch.arange(n) % c
    right = torch.full((n, c), -3.0)
    right[torch.arange(n), y] = 3.0
    wrong = torch.full((n, c), -3.0)
    wrong[torch.arange(n), (y + 1) % c] = 3.0
    first_wrong = torch.arange(n) % 2 == 0  # half the cases: the gate's first choice is the wrong expert
    first = torch.where(first_wrong.view(-1, 1), wrong, right)
    second = torch.where(first_wrong.view(-1, 1), right, wrong)
    logits = torch.stack([first, second], dim=1)
    out = _two_expert_output(logits, first_gate_logit=2.0)
    _, tg = fit_calibration(out, y)
    assert tg == pytest.approx(1.0)


def test_brier_score_by_hand_and_unknown_score_refused() -> None:
    from moe_app.train.evaluate import CALIBRATION_SCORES, fit_calibration

    p = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    y = torch.tensor([0, 2])
    expected = ((0.3**2 + 0.2**2 + 0.1**2) + (0.5**2 + 0.5**2 + 1.0)) / 2
    assert CALIBRATION_SCORES["brier"](p, y) == pytest.approx(expected)
    with pytest.raises(ValueError, match="calibration score"):
        fit_calibration(_two_expert_output(torch.zeros(4, 2, 5), 1.0), torch.zeros(4, dtype=torch.long), score="ece")


def test_brier_fit_sharpens_an_underconfident_bulk_that_nll_leaves_soft() -> None:
    """Many right-but-hesitant cases and a few confidently wrong ones: the Brier fit sharpens more than the NLL fit."""
    from moe_app.train.evaluate import fit_temperature

    n, c = 400, 5
    y = torch.arange(n) % c
    logits = torch.zeros(n, 2, c)
    logits[torch.arange(n), 0, y] = 1.5  # expert 0: right, p(y) about 0.53
    wrong = torch.arange(n) % 10 == 0  # one case in ten: confidently wrong
    logits[wrong, 0] = 0.0
    logits[wrong, 0, (y[wrong] + 1) % c] = 6.0
    logits[:, 1] = logits[:, 0]
    out = _two_expert_output(logits, 0.0)
    assert fit_temperature(out, y, score="brier") < fit_temperature(out, y, score="nll")
