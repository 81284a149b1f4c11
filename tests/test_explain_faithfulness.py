"""The explanations are faithful to the model: exact decomposition, real what-if re-runs,
complete Integrated Gradients, a model-randomisation check, and well-formed heatmaps."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from moe_app.errors import ModelError
from moe_app.explain import (
    contributions_figure,
    explain_case,
    image_heatmaps,
    report_attributions,
    report_highlights,
    summary,
    vitals_attributions,
    what_if_summary,
)
from moe_app.explain.image import gradcam
from moe_app.explain.sanity import randomised_copy, spearman
from moe_app.explain.text import _trim, word_scores
from moe_app.explain.vitals import vitals_ig
from moe_app.labels import VITALS
from moe_app.model import EXPERTS, LoadedModel, featurize
from moe_app.prediction import Prediction
from moe_app.runtime.predictor import drop_modalities
from moe_app.runtime.torch import TorchPredictor
from tests import conftest_explain as fx
from tests.conftest_explain import Example

BUDGET_MS = float(os.environ.get("MOE_APP_EXPLAIN_BUDGET_MS", "1000"))


@pytest.fixture(scope="module")
def trained_model() -> LoadedModel:
    return fx.trained_model()


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return list(fx.examples())


@pytest.fixture(scope="module")
def predictor(trained_model: LoadedModel) -> TorchPredictor:
    return TorchPredictor(trained_model)


@pytest.fixture(scope="module")
def predictions(predictor: TorchPredictor, examples: list[Example]) -> list[Prediction]:
    return predictor.predict([e.case for e in examples])


def report_only(predictor: TorchPredictor, case) -> Prediction:  # noqa: ANN001
    """A re-run in which only the report experts can be chosen (both are selected with k=2)."""
    return predictor.what_if(case, removed_modalities=("image", "vitals"), removed_experts=("cross_modal",))


def test_contributions_sum_to_output_probabilities(trained_model: LoadedModel, examples: list[Example],
                                                   predictions: list[Prediction]) -> None:
    x = featurize([e.case for e in examples], trained_model.tokenizer, trained_model.cfg)
    with torch.no_grad():
        out = trained_model.model(x)
    assert torch.allclose(out.contributions.sum(1), out.probs, atol=1e-6, rtol=0)
    for i, pred in enumerate(predictions):
        for j, label in enumerate(trained_model.cfg.labels):
            assert pred.probabilities[label] == pytest.approx(float(out.probs[i, j]), abs=1e-5)
            parts = sum(c[label] for c in pred.contributions.values())
            # The record keeps 6 decimals per number: allow half a unit per rounded term.
            assert abs(parts - pred.probabilities[label]) <= 1e-6 + 0.5e-6 * (len(pred.contributions) + 1)
        bars = [t for t in contributions_figure(pred).data]
        shown = sum(b.x[-1 - trained_model.cfg.labels.index(pred.diagnosis)] for b in bars)
        assert shown == pytest.approx(pred.probabilities[pred.diagnosis], abs=2e-6)


def test_removing_the_top_expert_equals_rerunning_with_it_masked(
        trained_model: LoadedModel, predictor: TorchPredictor, examples: list[Example],
        predictions: list[Prediction]) -> None:
    names = trained_model.cfg.experts
    for ex, before in zip(examples, predictions, strict=True):
        top = before.selected_experts[0]
        after = predictor.what_if(ex.case, removed_experts=(top,))
        x = featurize([ex.case], trained_model.tokenizer, trained_model.cfg)
        with torch.no_grad():
            out = trained_model.model(x, expert_mask=torch.tensor([n != top for n in names]))
        assert top not in after.selected_experts and after.gating[top] == 0.0
        for j, label in enumerate(trained_model.cfg.labels):
            assert after.probabilities[label] == pytest.approx(float(out.probs[0, j]), abs=1e-5)
        for e, name in enumerate(names):
            assert after.gating[name] == pytest.approx(float(out.weights[0, e]), abs=1e-5)
        assert f"Removed: {EXPERTS[top].title}." in what_if_summary(before, after)


def test_removing_a_modality_equals_running_without_it(trained_model: LoadedModel, predictor: TorchPredictor,
                                                       examples: list[Example]) -> None:
    ex = examples[0]
    after = predictor.what_if(ex.case, removed_modalities=("image",))
    x = featurize([drop_modalities(ex.case, ("image",))], trained_model.tokenizer, trained_model.cfg)
    with torch.no_grad():
        out = trained_model.model(x)
    assert not any(EXPERTS[n].modality == "image" for n in after.selected_experts)
    assert [after.probabilities[lb] for lb in trained_model.cfg.labels] == pytest.approx(out.probs[0].tolist(), abs=1e-5)
    assert "the image input" in what_if_summary(predictor.predict([ex.case])[0], after)


def test_trimming_padding_does_not_change_the_report_experts(trained_model: LoadedModel, examples: list[Example]) -> None:
    x = featurize([examples[0].case], trained_model.tokenizer, trained_model.cfg)
    with torch.no_grad():
        for name in ("report_findings", "report_keywords", "cross_modal"):
            full, short = trained_model.model.run_expert(name, x), trained_model.model.run_expert(name, _trim(x))
            assert torch.allclose(full, short, atol=1e-5), name


def test_report_integrated_gradients_are_complete(trained_model: LoadedModel, predictor: TorchPredictor,
                                                  examples: list[Example]) -> None:
    for ex in examples[:3]:
        pred = report_only(predictor, ex.case)
        att = report_attributions(trained_model, ex.case, pred, n_steps=96)
        assert att is not None and att.used and set(att.weights) == set(pred.selected_experts)
        gap = att.output - att.baseline_output
        assert abs(att.delta) <= 2e-3 + 0.02 * abs(gap), (att.delta, gap)
        # The attributed target is exactly the explained experts' share of the output.
        share = sum(pred.contributions[n][pred.diagnosis] for n in att.weights)
        assert att.output == pytest.approx(share, abs=1e-4)


def test_vitals_integrated_gradients_are_complete(trained_model: LoadedModel, examples: list[Example],
                                                  predictions: list[Prediction]) -> None:
    for ex, pred in list(zip(examples, predictions, strict=True))[:4]:
        _, out, base, delta, _ = vitals_ig(trained_model, ex.case, pred, n_steps=64)
        assert abs(delta) <= 1e-3 + 0.02 * abs(out - base)
        scores, out, base, delta, _ = vitals_ig(trained_model, ex.case, pred)  # the UI's default steps
        assert abs(delta) <= 5e-3 + 0.05 * abs(out - base)
        rows = vitals_attributions(trained_model, ex.case, pred)
        assert [r.field for r in rows] == [v.key for v in VITALS] + ["sex"]
        assert sum(r.attribution for r in rows) == pytest.approx(float(scores.sum()), abs=1e-6)
        assert all(r.missing == (r.value is None) for r in rows)


def test_randomised_weights_give_different_report_attributions(trained_model: LoadedModel, predictor: TorchPredictor,
                                                              examples: list[Example]) -> None:
    random_model = randomised_copy(trained_model, seed=1)
    rhos = []
    for ex in examples[:6]:
        pred = report_only(predictor, ex.case)
        a = report_attributions(trained_model, ex.case, pred, n_steps=24)
        b = report_attributions(random_model, ex.case, pred, n_steps=24)
        assert a is not None and b is not None
        wa = [s for *_, s in word_scores(a, ex.case.report or "")]
        wb = [s for *_, s in word_scores(b, ex.case.report or "")]
        rhos.append(spearman(np.array(wa), np.array(wb)))
    assert np.mean(rhos) < 0.5, rhos
    assert max(rhos) < 0.9, rhos


def test_heatmaps_have_the_image_shape_are_finite_and_in_unit_range(
        trained_model: LoadedModel, predictor: TorchPredictor, examples: list[Example]) -> None:
    for ex in examples[:3]:
        pix = ex.case.image.model_input[:, 16:112]  # a non-square image too: (128, 96)
        case = replace(ex.case, image=replace(ex.case.image, frames=(pix,), model_input=pix))
        for c in (ex.case, case):
            pred = predictor.what_if(c, removed_modalities=("report", "vitals"))
            maps = image_heatmaps(trained_model, c, pred, include_cross_modal=True)
            assert list(maps) == pred.selected_experts  # image experts and cross-modal: all have a map
            only_image = image_heatmaps(trained_model, c, pred)
            assert list(only_image) == [n for n in pred.selected_experts if EXPERTS[n].modality == "image"]
            for heat in maps.values():
                assert heat.shape == c.image.model_input.shape and heat.dtype == np.float32
                assert np.isfinite(heat).all() and heat.min() >= 0.0 and heat.max() <= 1.0
                assert heat.max() == pytest.approx(1.0) or heat.max() == 0.0


def test_gradcam_is_the_textbook_formula(trained_model: LoadedModel, examples: list[Example]) -> None:
    """captum as used = Grad-CAM ReLU(sum_k mean(dy/dA_k) A_k) and HiResCAM, computed by hand.

    y is the expert's calibrated log-probability of the class (what its opinion in the mixture is).
    """
    x = featurize([examples[0].case], trained_model.tokenizer, trained_model.cfg)
    expert = trained_model.model.experts["image_texture"]
    store: dict[str, torch.Tensor] = {}
    handle = expert.last_conv.register_forward_hook(lambda m, i, o: store.update(a=o))
    try:
        with torch.enable_grad():
            logp = torch.log_softmax(expert(image=x.image) / trained_model.cfg.temperature, dim=-1)[0, 3]
            (grad,) = torch.autograd.grad(logp, store["a"])
    finally:
        handle.remove()
    manual = torch.relu((grad.mean((2, 3), keepdim=True) * store["a"]).sum(1, keepdim=True)).detach()
    assert torch.allclose(gradcam(trained_model, "image_texture", x, 3, "gradcam"), manual, atol=1e-6)
    hires = torch.relu((grad * store["a"]).sum(1, keepdim=True)).detach()
    assert torch.allclose(gradcam(trained_model, "image_texture", x, 3, "hirescam"), hires, atol=1e-6)
    assert torch.allclose(gradcam(trained_model, "image_texture", x, 3), hires, atol=1e-6)  # the UI's default
    with pytest.raises(ModelError, match="heatmap method"):
        gradcam(trained_model, "image_texture", x, 3, "saliency")


def test_explain_case_bundles_everything_quickly(trained_model: LoadedModel, examples: list[Example],
                                                 predictions: list[Prediction]) -> None:
    ex, pred = examples[1], predictions[1]
    explain_case(trained_model, ex.case, pred)  # warm-up (first call allocates)
    runs = [explain_case(trained_model, ex.case, pred) for _ in range(2)]
    result = runs[-1]
    assert "".join(t for t, _ in result.report) == ex.case.report
    assert all(s is None or -1.0 <= s <= 1.0 for _, s in result.report)
    assert len(result.vitals) == len(VITALS) + 1
    assert set(result.heatmaps) <= set(pred.selected_experts)
    text = summary(pred, extras=result.extras())
    assert text.startswith("Most probable diagnosis")
    best = min(r.timings_ms["total"] for r in runs)
    print(f"explain_case: {best:.0f} ms (best of 2), parts {runs[-1].timings_ms}")
    assert best <= BUDGET_MS, f"explain_case took {best:.0f} ms, budget {BUDGET_MS:.0f} ms"


def test_missing_modalities_give_empty_explanations(trained_model: LoadedModel, predictor: TorchPredictor,
                                                    examples: list[Example]) -> None:
    case = replace(examples[2].case, image=None, report=None)
    pred = predictor.predict([case])[0]
    assert image_heatmaps(trained_model, case, pred) == {}
    assert report_highlights(trained_model, case, pred) == []
    assert len(vitals_attributions(trained_model, case, pred)) == len(VITALS) + 1
    vit_only = replace(examples[2].case, vitals=None, sex=None)
    assert vitals_attributions(trained_model, vit_only, predictor.predict([vit_only])[0]) == []


def test_explanations_leave_the_shared_network_untouched(trained_model: LoadedModel, examples: list[Example],
                                                         predictions: list[Prediction]) -> None:
    """captum's hooks go on a private copy, so predictions served meanwhile stay exact."""
    net = trained_model.model
    before = {k: v.clone() for k, v in net.state_dict().items()}
    threads = torch.get_num_threads()
    explain_case(trained_model, examples[0].case, predictions[0])
    assert torch.get_num_threads() == threads  # the one-thread setting of explanations is undone
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not net.training


def test_a_model_in_training_mode_is_refused(trained_model: LoadedModel, examples: list[Example],
                                             predictions: list[Prediction]) -> None:
    net = randomised_copy(trained_model).model.train()
    with pytest.raises(ModelError, match="training mode"):
        image_heatmaps(replace(trained_model, model=net), examples[0].case, predictions[0])
