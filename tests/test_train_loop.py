"""A short training run on tiny in-memory data, calibration, abstention, CLI wiring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from moe_app.model import MoEConfig, MoEModel, TrainConfig, load_model
from moe_app.model.losses import total_loss
from moe_app.model.text import train_wordpiece
from moe_app.train.data import CaseTable, table_from_cases
from moe_app.train.evaluate import classification_metrics, ece, fit_abstention, fit_temperature
from moe_app.train.loop import batched_forward, fit, modality_dropout, seed_everything
from moe_app.train.run import run_training
from tests.conftest_model import make_cases, tiny_config


@pytest.fixture
def tiny_cfg() -> MoEConfig:
    return tiny_config()


@pytest.fixture
def tiny_table() -> CaseTable:
    cases, labels = make_cases(100, seed=1)
    splits = ["train"] * 60 + ["val"] * 20 + ["test"] * 20
    return table_from_cases(cases, labels, splits, image_size=32)


def _loss(model: MoEModel, x, y) -> float:
    model.eval()
    with torch.no_grad():
        out = model(x, run_all=True)
        c = model.cfg
        return float(total_loss(out.probs, out.gate_logits, out.gate_probs, out.selected, out.expert_logits,
                                out.ran, y, c.w_balance, c.w_z, c.w_expert)["loss"])


def _train_val(table: CaseTable, cfg: MoEConfig) -> tuple[MoEConfig, object, torch.Tensor, object, torch.Tensor]:
    """Tokenizer trained on the tiny set; the config sized to it; train and val inputs and labels."""
    tok = train_wordpiece([r for r in table.reports if r], 200)
    cfg = cfg.replace(vocab_size=tok.vocab_size)
    tr, va = table.rows("train"), table.rows("val")
    return cfg, table.inputs(tr, tok, cfg), table.labels[tr], table.inputs(va, tok, cfg), table.labels[va]


def test_short_training_reduces_loss_and_is_deterministic(tiny_table: CaseTable, tiny_cfg: MoEConfig) -> None:
    cfg, x, y, xv, yv = _train_val(tiny_table, tiny_cfg)
    tcfg = TrainConfig(seed=3, epochs=6, batch_size=16, patience=10)
    probs = []
    for _ in range(2):
        gen = seed_everything(tcfg.seed, 1)
        model = MoEModel(cfg)
        before = _loss(model, x, y)
        res = fit(model, x, y, xv, yv, tcfg, gen)
        probs.append(batched_forward(model, xv).probs)
    assert _loss(model, x, y) < before
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert torch.equal(probs[0], probs[1]), "same seed, same model"


def test_modality_dropout_keeps_at_least_one(tiny_table: CaseTable, tiny_cfg: MoEConfig) -> None:
    tok = train_wordpiece([r for r in tiny_table.reports if r], 200)
    x = tiny_table.inputs(torch.arange(100), tok, tiny_cfg.replace(vocab_size=tok.vocab_size))
    d = modality_dropout(x, 0.9, torch.Generator().manual_seed(0))
    assert (d.presence.sum(1) >= 1).all() and (d.presence <= x.presence).all()
    gone = d.presence[:, 0] == 0
    assert (d.image[gone] == 0).all()
    assert (d.vitals[d.presence[:, 2] == 0][:, 10:20] == 1).all(), "hidden vitals are flagged missing"


def test_ece_and_metrics_by_hand() -> None:
    probs = np.array([[0.9, 0.1, 0, 0, 0], [0.6, 0.4, 0, 0, 0]])
    y = np.array([0, 1])
    # bins: 0.9 (correct) -> |1-0.9|, 0.6 (wrong) -> |0-0.6|; each half the cases
    assert ece(probs, y) == pytest.approx(0.5 * 0.1 + 0.5 * 0.6)
    m = classification_metrics(probs, y)
    assert m["accuracy"] == 0.5 and m["sens_normal"] == 1.0 and m["sens_pneumonia"] == 0.0


def test_abstention_threshold_hits_coverage() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=1000)
    y = probs.argmax(1)
    rule = fit_abstention(probs, y, 0.9)
    assert rule.val_coverage == pytest.approx(0.9, abs=0.01)
    assert rule.uncertain(torch.tensor(probs)).float().mean() == pytest.approx(0.1, abs=0.01)


def test_temperature_fixes_overconfidence(tiny_cfg: MoEConfig) -> None:
    from moe_app.model.moe import MoEOutput

    torch.manual_seed(0)
    n = 2000
    y = torch.randint(0, 5, (n,))
    logits = torch.randn(n, 1, 5)
    logits[torch.arange(n), 0, y] += 1.0
    z = 4 * logits  # 4x overconfident
    w = torch.ones(n, 1)
    out = MoEOutput(probs=None, gate_logits=None, gate_probs=None, weights=w, selected=None, expert_logits=z,
                    expert_probs=None, ran=torch.ones(n, 1, dtype=torch.bool), available=None, contributions=None)
    assert fit_temperature(out, y) == pytest.approx(4.0, rel=0.15)


def test_run_training_writes_a_loadable_folder(tmp_path: Path, tiny_table: CaseTable, tiny_cfg: MoEConfig) -> None:
    from moe_app.train.report import model_card

    m = run_training(tiny_table, tmp_path, tiny_cfg, TrainConfig(epochs=2, batch_size=32, threads=1),
                     vocab_size=200, baselines=False)
    for name in ("model.safetensors", "config.json", "tokenizer.json", "abstention.json", "metrics.json"):
        assert (tmp_path / name).is_file(), name
    lm = load_model(tmp_path)
    assert lm.temperature == pytest.approx(m["temperature"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved["moe"]["routing"]["utilisation"]) == set(tiny_cfg.experts)
    card = model_card(saved, "moe-app train ...")
    assert "not for clinical use" in card and "Abstention rule" in card


def test_baselines_in_a_second_process_match_in_process(tmp_path: Path, tiny_table: CaseTable,
                                                        tiny_cfg: MoEConfig) -> None:
    tcfg = TrainConfig(epochs=1, batch_size=32, threads=1)
    a = run_training(tiny_table, tmp_path / "a", tiny_cfg, tcfg, vocab_size=200, parallel=True)
    b = run_training(tiny_table, tmp_path / "b", tiny_cfg, tcfg, vocab_size=200, parallel=False)
    for key, value in a["dense"]["all"].items():
        assert value == pytest.approx(b["dense"]["all"][key], abs=1e-3, nan_ok=True), key
    assert set(a["single_modality"]) == {"image", "report", "vitals"}
    assert a["moe"]["all"]["accuracy"] == b["moe"]["all"]["accuracy"]


def test_train_and_evaluate_commands_on_synthetic_folders(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from moe_app.cli import app
    from moe_app.synth.dataset import generate_dataset
    from moe_app.synth.generate import SynthConfig

    data, out = tmp_path / "data", tmp_path / "model"
    generate_dataset(data, 30, seed=5, cfg=SynthConfig(image_size=64), workers=1, progress=False)
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--data", str(data), "--out", str(out), "--epochs", "1",
                              "--image-size", "32", "--no-baselines"])
    assert res.exit_code == 0, res.output
    assert "not for clinical use" in (out / "model_card.md").read_text()
    assert "--seed 5" in (out / "model_card.md").read_text()
    res = runner.invoke(app, ["evaluate", "--model", str(out), "--data", str(data), "--split", "train",
                              "--out", str(tmp_path / "eval.json")])
    assert res.exit_code == 0, res.output
    assert "accuracy" in json.loads((tmp_path / "eval.json").read_text())["moe"]["all"]


def test_evaluate_handwritten_runs_report_only(tiny_cfg: MoEConfig) -> None:
    from moe_app.train.encoders import evaluate_handwritten, read_report_set

    path = Path(__file__).parent / "data" / "report_generalisation.csv"
    texts, _ = read_report_set(path)
    tok = train_wordpiece(texts, 300)
    model = MoEModel(tiny_cfg.replace(vocab_size=tok.vocab_size))
    res = evaluate_handwritten(model, tok, path)
    assert res["n"] == len(texts) and 0.0 <= res["moe"] <= 1.0
    assert set(res["per_class"]) == {"normal", "pneumonia", "heart_failure", "pneumothorax", "pulmonary_embolism"}


def test_early_stopping_on_the_calibrated_nll(tiny_table: CaseTable, tiny_cfg: MoEConfig) -> None:
    """Early stopping on the temperature-calibrated NLL: history records both NLLs, the best epoch is restored."""
    from moe_app.train.loop import val_nll

    cfg, x, y, xv, yv = _train_val(tiny_table, tiny_cfg)
    tcfg = TrainConfig(seed=3, epochs=4, batch_size=16, patience=10, select_on="calibrated_nll")
    model = MoEModel(cfg)
    res = fit(model, x, y, xv, yv, tcfg, seed_everything(3, 1))
    for h in res.history:  # T = 1 is on the temperature grid, so calibrating never makes the NLL worse
        assert h["val_nll_calibrated"] <= h["val_nll"] + 1e-6
    best = min(res.history, key=lambda h: h["val_nll_calibrated"])
    assert res.best_epoch == best["epoch"]
    nll, _, cal = val_nll(model, xv, yv, dense=False)  # the restored weights are the best epoch's
    assert cal == pytest.approx(best["val_nll_calibrated"], abs=1e-6)
