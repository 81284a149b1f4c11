"""ONNX Runtime against the PyTorch reference, conditional computation, and the output invariants."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest

from moe_app.errors import ModelError
from moe_app.labels import MODALITIES
from moe_app.model import EXPERTS
from moe_app.model.features import model_modalities as mods
from tests import conftest_runtime as rt
from tests.conftest_runtime import ABSTAIN_BELOW, N_SYNTH

# Fixtures shared by the runtime test modules (their builders are cached: one export per run).
onnx_predictor, torch_predictor, synth_cases = rt.onnx_predictor, rt.torch_predictor, rt.synth_cases

TOL = 1e-4


def test_the_synthetic_cases_cover_every_missing_modality_pattern(synth_cases):
    patterns = Counter(tuple(mods(c)[m] for m in MODALITIES) for c in synth_cases)
    assert len(synth_cases) == N_SYNTH
    # every non-empty subset of (image, report, vitals), i.e. all 7 patterns
    assert len(patterns) == 7, patterns


def test_onnx_matches_torch_on_200_synthetic_cases(onnx_predictor, torch_predictor, synth_cases):
    x = onnx_predictor.featurize(synth_cases)
    got, want = onnx_predictor.mixture(x), torch_predictor.mixture(x)
    assert np.abs(got.probs - want.probs).max() <= TOL
    assert np.abs(got.gate_probs - want.gate_probs).max() <= TOL
    assert np.abs(got.weights - want.weights).max() <= TOL
    assert np.array_equal(got.selected, want.selected)
    assert np.array_equal(got.ran, want.ran)
    assert np.abs(got.expert_probs - want.expert_probs).max() <= TOL


def test_predictions_agree_between_runtimes(onnx_predictor, torch_predictor, synth_cases):
    cases = synth_cases[:40]
    for a, b in zip(onnx_predictor.predict(cases), torch_predictor.predict(cases), strict=True):
        assert a.selected_experts == b.selected_experts
        assert a.diagnosis == b.diagnosis or max(a.probabilities.values()) - sorted(a.probabilities.values())[-2] < TOL
        assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) <= TOL
        assert max(abs(a.gating[k] - b.gating[k]) for k in a.gating) <= TOL
        assert a.uncertain == b.uncertain
    assert a.runtime == "onnxruntime:CPUExecutionProvider" and b.runtime == "torch:cpu"
    assert a.model_version == b.model_version and a.model_version.startswith("moe-")


class _CountingSession:
    """Wraps an ORT session and records how many rows each run received."""

    def __init__(self, session, calls: list[int]) -> None:
        self._session, self._calls = session, calls

    def run(self, outputs, feeds):
        self._calls.append(len(next(iter(feeds.values()))))
        return self._session.run(outputs, feeds)


def test_unselected_experts_never_run(onnx_predictor, synth_cases, monkeypatch):
    calls: dict[str, list[int]] = {name: [] for name in onnx_predictor.sessions}
    for name, session in list(onnx_predictor.sessions.items()):
        monkeypatch.setitem(onnx_predictor.sessions, name, _CountingSession(session, calls[name]))
    preds = onnx_predictor.predict(synth_cases)
    chosen = Counter(e for p in preds for e in p.selected_experts)
    assert calls["gate"] == [len(synth_cases)]
    for name in onnx_predictor.expert_names:
        assert sum(calls[name]) == chosen[name], name  # exactly the rows that selected it
        assert len(calls[name]) == (1 if chosen[name] else 0)


def test_gating_and_contributions_invariants(onnx_predictor, synth_cases):
    for case, p in zip(synth_cases, onnx_predictor.predict(synth_cases), strict=True):
        assert p.diagnosis == max(p.probabilities, key=p.probabilities.get)
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
        selected = [e for e, w in p.gating.items() if w > 0]
        assert sorted(selected) == sorted(p.selected_experts) and 1 <= len(selected) <= 2
        assert sum(p.gating[e] for e in selected) == pytest.approx(1.0, abs=1e-5)
        weights = [p.gating[e] for e in p.selected_experts]
        assert weights == sorted(weights, reverse=True)
        for e in p.gating:
            needs = EXPERTS[e].requires
            if any(not mods(case)[m] for m in needs):
                assert p.gating[e] == 0.0 and p.gate_probabilities[e] == 0.0, (e, mods(case))
        for label, prob in p.probabilities.items():
            assert sum(c[label] for c in p.contributions.values()) == pytest.approx(prob, abs=1e-5)
        assert set(p.experts) == set(p.selected_experts)
        assert p.modalities == mods(case)


def test_abstention_rule_of_the_model_card(onnx_predictor, synth_cases):
    preds = onnx_predictor.predict(synth_cases)
    flags = {p.uncertain for p in preds}
    assert flags == {True, False}, "the fixture threshold should flag some cases and keep others"
    for p in preds:
        assert p.uncertain == (max(p.probabilities.values()) < ABSTAIN_BELOW)
        assert bool(p.uncertainty_reason) == p.uncertain


@pytest.mark.parametrize("k", [1, 3, 6])
def test_top_k_overrides_the_model_default(onnx_predictor, torch_predictor, synth_cases, k):
    cases = synth_cases[:30]
    for a, b in zip(onnx_predictor.predict(cases, top_k=k), torch_predictor.predict(cases, top_k=k), strict=True):
        n_available = sum(all(a.modalities[m] for m in EXPERTS[e].requires) for e in a.gating)
        assert len(a.selected_experts) == min(k, n_available)
        assert a.selected_experts == b.selected_experts


def test_what_if_masks_experts_before_top_k_and_drops_modalities(onnx_predictor, torch_predictor, synth_cases):
    case = next(c for c in synth_cases if all(mods(c).values()))
    base = onnx_predictor.predict([case])[0]
    removed = base.selected_experts[0]
    for p in (onnx_predictor, torch_predictor):
        masked = p.what_if(case, removed_experts=(removed,))
        assert masked.gating[removed] == 0.0 and masked.gate_probabilities[removed] == 0.0
        assert len(masked.selected_experts) == 2 and removed not in masked.selected_experts
        no_image = p.what_if(case, removed_modalities=("image",))
        assert no_image.modalities["image"] is False
        assert no_image.gating["image_texture"] == no_image.gating["image_shape"] == 0.0
    a = onnx_predictor.what_if(case, removed_experts=(removed,), removed_modalities=("report",))
    b = torch_predictor.what_if(case, removed_experts=(removed,), removed_modalities=("report",))
    assert a.selected_experts == b.selected_experts
    assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) <= TOL


@pytest.mark.parametrize("kwargs", [
    {"removed_modalities": ("image", "report", "vitals")},
    {"removed_experts": ("no_such_expert",)},
    {"removed_modalities": ("ecg",)},
    {"removed_experts": tuple(EXPERTS)},
])
def test_what_if_rejects_impossible_requests(onnx_predictor, synth_cases, kwargs):
    case = next(c for c in synth_cases if all(mods(c).values()))
    with pytest.raises(ModelError):
        onnx_predictor.what_if(case, **kwargs)


def test_expert_opinion_of_an_unselected_expert(onnx_predictor, torch_predictor, synth_cases):
    case = next(c for c in synth_cases if all(mods(c).values()))
    pred = onnx_predictor.predict([case])[0]
    unused = next(e for e in onnx_predictor.expert_names if e not in pred.selected_experts)
    a, b = onnx_predictor.expert_opinion(case, unused), torch_predictor.expert_opinion(case, unused)
    assert a.modality == EXPERTS[unused].modality
    assert sum(a.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) <= TOL
    assert onnx_predictor.predict([case])[0].gating[unused] == 0.0  # asking changed nothing


def test_expert_opinion_needs_the_experts_modality(onnx_predictor, synth_cases):
    case = next(c for c in synth_cases if not mods(c)["image"])
    with pytest.raises(ModelError, match="image"):
        onnx_predictor.expert_opinion(case, "image_texture")


def test_concurrent_users_get_the_same_answers(onnx_predictor, synth_cases):
    cases = synth_cases[:24]
    expected = [p.probabilities for p in onnx_predictor.predict(cases)]
    results: dict[int, list[dict[str, float]]] = {}

    def work(t: int) -> None:
        results[t] = [onnx_predictor.predict([c])[0].probabilities for c in cases]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results.values():
        for g, e in zip(got, expected, strict=True):
            assert max(abs(g[k] - e[k]) for k in g) <= 1e-5
