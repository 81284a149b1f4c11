"""Shapes, masking, routing, the exact decomposition, conditional computation, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from moe_app.errors import ModelError
from moe_app.labels import LABELS, VITALS
from moe_app.model import (
    EXPERTS,
    MoEConfig,
    MoEModel,
    count_parameters,
    featurize,
    load_model,
    route,
    save_model,
)
from moe_app.model.features import (
    ModelInputs,
    model_modalities,
    normalise_vital,
    resize_image,
    vitals_vector,
)
from moe_app.model.text import ReportTokenizer, build_encoder, train_wordpiece
from tests.conftest_model import REPORT_TEMPLATES, make_cases, tiny_config


@pytest.fixture
def tiny_cfg() -> MoEConfig:
    return tiny_config()


@pytest.fixture
def tiny_cases() -> tuple[list, list[str]]:
    return make_cases(40)


@pytest.fixture
def tokenizer() -> ReportTokenizer:
    return train_wordpiece(list(REPORT_TEMPLATES.values()) * 3, 200)


@pytest.fixture
def tiny_model(tiny_cfg: MoEConfig, tokenizer: ReportTokenizer) -> MoEModel:
    torch.manual_seed(0)
    return MoEModel(tiny_cfg.replace(vocab_size=tokenizer.vocab_size)).eval()


@pytest.fixture
def batch(tiny_cases, tokenizer: ReportTokenizer, tiny_model: MoEModel) -> ModelInputs:
    return featurize(tiny_cases[0], tokenizer, tiny_model.cfg)


def test_featurize_shapes_and_presence(batch: ModelInputs, tiny_cases, tiny_model: MoEModel) -> None:
    cfg, n = tiny_model.cfg, len(tiny_cases[0])
    assert batch.image.shape == (n, 1, cfg.image_size, cfg.image_size)
    assert batch.input_ids.shape == batch.attention_mask.shape == (n, cfg.max_tokens)
    assert batch.vitals.shape == (n, cfg.n_vitals_features)
    expected = torch.tensor([[float(model_modalities(c)[m]) for m in ("image", "report", "vitals")] for c in tiny_cases[0]])
    assert torch.equal(batch.presence, expected)
    assert (batch.attention_mask.sum(1) >= 2).all(), "an empty report still has [CLS] [SEP]"


def test_vitals_vector_normalises_and_flags_missing() -> None:
    v = vitals_vector({"heart_rate_bpm": 80.0}, "F")
    n = len(VITALS)
    assert v.shape == (2 * n + 2,)
    hr = [s.key for s in VITALS].index("heart_rate_bpm")
    assert v[hr] == pytest.approx(0.0)  # middle of 60-100
    assert v[n + hr] == 0.0 and v[n:2 * n].sum() == n - 1
    assert list(v[-2:]) == [1.0, 0.0]
    spo2 = next(s for s in VITALS if s.key == "spo2_percent")
    assert normalise_vital(spo2, 0.0) == -8.0  # clipped


@pytest.mark.parametrize("shape", [(2048, 2048), (300, 500), (7, 7), (1, 1)])
def test_resize_any_image(shape: tuple[int, int]) -> None:
    out = resize_image(np.full(shape, 0.5, np.float32), 32)
    assert out.shape == (1, 32, 32) and torch.allclose(out, torch.full_like(out, 0.5))


@pytest.mark.parametrize("bad", [np.zeros((0, 5), np.float32), np.zeros((4, 4, 3), np.float32)])
def test_resize_rejects_non_2d(bad: np.ndarray) -> None:
    with pytest.raises(ModelError):
        resize_image(bad, 32)


def test_empty_case_is_rejected(tokenizer: ReportTokenizer, tiny_cfg: MoEConfig) -> None:
    from moe_app.intake.case import Case

    with pytest.raises(ModelError, match="no image, report or vitals"):
        featurize([Case(case_id="x", pseudonym="p")], tokenizer, tiny_cfg)


def test_route_topk_renormalise_by_hand() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    g = route(logits, torch.ones(1, 4, dtype=torch.bool), top_k=2)
    p = torch.softmax(logits, -1)[0]
    assert g.selected.tolist() == [[0, 1]]
    assert torch.allclose(g.weights[0], torch.tensor([p[0], p[1], 0, 0]) / (p[0] + p[1]))
    assert torch.allclose(g.probs, torch.softmax(logits, -1))


def test_route_masks_unavailable_and_handles_fewer_than_k() -> None:
    logits = torch.tensor([[5.0, 1.0, 0.0], [5.0, 1.0, 0.0]])
    avail = torch.tensor([[False, True, True], [True, False, False]])
    g = route(logits, avail, top_k=2)
    assert g.weights[0, 0] == 0 and g.probs[0, 0] == 0
    assert g.selected[0].tolist() == [1, 2]
    assert g.selected[1].tolist() == [0, -1]
    assert torch.equal(g.weights[1], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.isneginf(g.logits[~avail]).all()


def test_absent_modality_expert_gets_zero_weight(tiny_model: MoEModel, batch: ModelInputs) -> None:
    out = tiny_model(batch)
    for i, name in enumerate(tiny_model.expert_names):
        for m, mod in enumerate(("image", "report", "vitals")):
            if mod in EXPERTS[name].requires:
                absent = batch.presence[:, m] == 0
                assert (out.weights[absent, i] == 0).all() and (out.gate_probs[absent, i] == 0).all()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_weights_sum_to_one_and_decomposition_exact(tiny_model: MoEModel, batch: ModelInputs, k: int) -> None:
    out = tiny_model(batch, top_k=k)
    assert torch.allclose(out.weights.sum(1), torch.ones(len(batch)), atol=1e-6)
    assert ((out.weights > 0).sum(1) <= k).all()
    assert torch.allclose(out.contributions.sum(1), out.probs, atol=1e-6)
    assert torch.allclose(out.probs.sum(1), torch.ones(len(batch)), atol=1e-5)


def test_unselected_experts_are_not_run(tiny_model: MoEModel, batch: ModelInputs) -> None:
    rows_seen: dict[str, int] = {}
    for name, expert in tiny_model.experts.items():
        expert.register_forward_hook(lambda m, a, o, name=name: rows_seen.__setitem__(name, rows_seen.get(name, 0) + o.shape[0]))
    out = tiny_model(batch)
    assert torch.equal(out.ran, out.weights > 0)
    for i, name in enumerate(tiny_model.expert_names):
        assert rows_seen.get(name, 0) == int((out.weights[:, i] > 0).sum())
    assert (out.expert_probs[~out.ran] == 0).all()


def test_expert_mask_acts_like_absent_modality(tiny_model: MoEModel, batch: ModelInputs) -> None:
    top = tiny_model(batch).selected[:, 0]
    mask = torch.ones(len(batch), len(tiny_model.expert_names), dtype=torch.bool)
    mask[torch.arange(len(batch)), top] = False
    out = tiny_model(batch, expert_mask=mask)
    assert (out.weights[torch.arange(len(batch)), top] == 0).all()
    assert torch.allclose(out.contributions.sum(1), out.probs, atol=1e-6)


def test_dense_mode_uses_every_available_expert(tiny_model: MoEModel, batch: ModelInputs) -> None:
    out = tiny_model(batch, dense=True)
    assert torch.equal(out.weights > 0, out.available)
    assert torch.allclose(out.weights, out.gate_probs)


def test_each_expert_runs_on_its_own_inputs(tiny_model: MoEModel, batch: ModelInputs) -> None:
    for name, expert in tiny_model.experts.items():
        logits = expert(**batch.kwargs(expert.input_names))
        assert logits.shape == (len(batch), len(LABELS)), name
        assert torch.allclose(tiny_model.run_expert(name, batch), logits)
    rep = tiny_model.experts["report_findings"]
    emb = rep.embeddings(batch.input_ids)
    assert torch.allclose(rep.forward_from_embeddings(emb, batch.attention_mask),
                          rep(batch.input_ids, batch.attention_mask), atol=1e-6)
    assert isinstance(tiny_model.experts["image_texture"].last_conv, torch.nn.Conv2d)


def test_registry_describes_every_expert(tiny_model: MoEModel) -> None:
    assert len(tiny_model.expert_names) >= 6
    for name in tiny_model.expert_names:
        spec = EXPERTS[name]
        assert spec.title and spec.description and spec.modality in ("image", "report", "vitals", "multimodal")
    assert sum(EXPERTS[n].modality == "image" for n in tiny_model.expert_names) >= 2


def test_count_parameters_active_below_total(tiny_model: MoEModel, batch: ModelInputs) -> None:
    out = tiny_model(batch)
    pc = count_parameters(tiny_model, out.weights)
    assert pc["experts_total"] == sum(pc["experts"].values())
    assert (pc["active_per_case"] < pc["experts_total"]).all()


def test_save_load_round_trip_identical(tmp_path: Path, tiny_model: MoEModel, tokenizer: ReportTokenizer,
                                        tiny_cases) -> None:
    tiny_model.cfg = tiny_model.cfg.replace(temperature=1.7)
    sha = save_model(tiny_model, tokenizer, tmp_path)
    lm = load_model(tmp_path)
    assert lm.weights_sha256 == sha and lm.temperature == 1.7 and not lm.model.training
    a = tiny_model(featurize(tiny_cases[0], tokenizer, tiny_model.cfg))
    b = lm.model(featurize(tiny_cases[0], lm.tokenizer, lm.cfg))
    assert torch.equal(a.probs, b.probs) and torch.equal(a.weights, b.weights)


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json", "tokenizer.json"])
def test_load_incomplete_folder_raises(tmp_path: Path, tiny_model: MoEModel, tokenizer: ReportTokenizer,
                                       missing: str) -> None:
    save_model(tiny_model, tokenizer, tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(ModelError):
        load_model(tmp_path)


def test_pretrained_encoder_sha_mismatch_raises(tmp_path: Path, tiny_cfg: MoEConfig) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"not the real weights")
    cfg = tiny_cfg.replace(text_encoder="pretrained", text_encoder_path=str(tmp_path), text_encoder_sha256="0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        build_encoder(cfg)


def test_config_json_round_trip(tiny_cfg: MoEConfig) -> None:
    assert MoEConfig.from_json(tiny_cfg.to_json()) == tiny_cfg
    with pytest.raises(ModelError):
        MoEConfig.from_json('{"no_such_field": 1}')
    with pytest.raises(ModelError):
        tiny_cfg.replace(top_k=0)


def test_packaged_minilm_loads_offline_with_verified_hash(tiny_cfg: MoEConfig) -> None:
    from moe_app.model.text import load_pretrained_tokenizer

    cfg = tiny_cfg.replace(text_encoder="pretrained")
    tok = load_pretrained_tokenizer(cfg)
    enc = build_encoder(cfg)
    assert all(not p.requires_grad for p in enc.parameters())
    ids, mask = tok.encode(["no pneumothorax", ""], 16)
    assert ids[0, 0] == tok.backend.token_to_id("[CLS]") and mask[1].sum() == 2
    h = enc(input_ids=ids, attention_mask=mask).last_hidden_state
    assert h.shape == (2, 16, 384) and torch.isfinite(h).all()


def test_handwritten_report_set_is_complete() -> None:
    from moe_app.train.encoders import read_report_set

    texts, y = read_report_set(Path(__file__).parent / "data" / "report_generalisation.csv")
    assert len(texts) >= 60 and set(y.tolist()) == set(range(len(LABELS)))
    assert min(torch.bincount(y).tolist()) >= 12
    assert len(set(texts)) == len(texts)


def test_sex_alone_is_not_vitals() -> None:
    from moe_app.intake.case import Case

    case = Case(case_id="x", pseudonym="p", report="lungs clear", sex="F")
    assert not model_modalities(case)["vitals"] and model_modalities(case)["report"]
