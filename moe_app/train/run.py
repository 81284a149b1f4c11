"""`moe-app train`: MoE + dense baseline + single-modality baselines, calibration, evaluation."""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from moe_app.labels import MODALITIES
from moe_app.model.config import MoEConfig, TrainConfig
from moe_app.model.features import ModelInputs
from moe_app.model.io import AbstentionRule, save_model
from moe_app.model.moe import MoEModel, count_parameters
from moe_app.model.text import ReportTokenizer, load_pretrained_tokenizer, train_wordpiece
from moe_app.train.data import CaseTable
from moe_app.train.evaluate import (
    abstention_stats,
    classification_metrics,
    fit_abstention,
    fit_calibration,
    routing_stats,
)
from moe_app.train.loop import batched_forward, fit, seed_everything


@dataclass
class Splits:
    x: dict[str, ModelInputs]
    y: dict[str, torch.Tensor]


def make_tokenizer(table: CaseTable, cfg: MoEConfig, vocab_size: int) -> ReportTokenizer:
    if cfg.text_encoder == "pretrained":
        return load_pretrained_tokenizer(cfg)
    texts = [table.reports[i] for i in table.rows("train").tolist() if table.reports[i]]
    return train_wordpiece(texts, vocab_size)


def attach_pooled(model: MoEModel, x: ModelInputs) -> ModelInputs:
    """Frozen pretrained encoder: compute its pooled report vectors once (training cache)."""
    if "report_findings" not in model.experts or not model.experts["report_findings"].frozen_encoder:
        return x
    enc = model.experts["report_findings"]
    chunks = []
    with torch.no_grad():
        for s in range(0, len(x), 128):
            chunks.append(enc.pooled(x.input_ids[s : s + 128], x.attention_mask[s : s + 128]))
    from dataclasses import replace
    return replace(x, report_pooled=torch.cat(chunks))  # (N, H)


def only_modality(x: ModelInputs, m: int) -> ModelInputs:
    keep = torch.zeros_like(x.presence)  # (B, 3)
    keep[:, m] = x.presence[:, m]
    return x.with_presence(keep)


def evaluate_model(model: MoEModel, x: ModelInputs, y: torch.Tensor, dense: bool = False) -> dict[str, object]:
    """Metrics with all modalities, with each one removed, routing stats and active parameters."""
    yn = y.numpy()
    out = batched_forward(model, x, dense=dense)
    res: dict[str, object] = {"all": classification_metrics(out.probs.numpy(), yn)}
    for m, name in enumerate(MODALITIES):
        keep = x.presence.clone()
        keep[:, m] = 0
        rows = (keep.sum(1) > 0).nonzero().squeeze(1)  # cases that still have something
        o = batched_forward(model, x.select(rows).with_presence(keep[rows]), dense=dense)
        res[f"without_{name}"] = classification_metrics(o.probs.numpy(), yn[rows.numpy()])
    res["routing"] = routing_stats(out, yn, model.cfg.experts)
    pc = count_parameters(model, out.weights)
    active = pc.pop("active_per_case").numpy()
    res["parameters"] = {**pc, "active_mean": float(active.mean()), "active_max": float(active.max()),
                         "active_share_mean": float(active.mean() / pc["experts_total"]),
                         "active_share_max": float(active.max() / pc["experts_total"])}
    res["_probs"] = out.probs
    return res


def calibrate(model: MoEModel, x: ModelInputs, y: torch.Tensor, coverage: float,
              dense: bool = False, score: str = "brier") -> AbstentionRule:
    """Fit the expert and gate temperatures (stored in model.cfg) and the abstention rule on validation."""
    model.cfg = model.cfg.replace(temperature=1.0, gate_temperature=1.0)
    out = batched_forward(model, x, dense=dense)
    t, tg = fit_calibration(out, y, score=score)
    model.cfg = model.cfg.replace(temperature=t, gate_temperature=tg)
    probs = batched_forward(model, x, dense=dense).probs.numpy()
    return fit_abstention(probs, y.numpy(), coverage)


def single_modality(cfg: MoEConfig, s: Splits, m: int, tcfg: TrainConfig, prior: torch.Tensor) -> dict[str, object]:
    """The same architecture trained and tested on one modality; cases without it get the prior."""
    name = MODALITIES[m]
    gen = seed_everything(tcfg.seed, tcfg.threads)
    model = MoEModel(cfg)
    has = {k: (s.x[k].presence[:, m] > 0).nonzero().squeeze(1) for k in ("train", "val", "test")}
    xs = {k: only_modality(s.x[k].select(has[k]), m) for k in has}
    r = fit(model, xs["train"], s.y["train"][has["train"]], xs["val"], s.y["val"][has["val"]], tcfg, gen,
            desc=f"{name}-only", modality_dropout_p=0.0)
    calibrate(model, xs["val"], s.y["val"][has["val"]], tcfg.abstain_coverage, score=tcfg.calibrate_on)
    probs = prior.repeat(len(s.y["test"]), 1)  # (N, C)
    probs[has["test"]] = batched_forward(model, xs["test"]).probs
    yt = s.y["test"].numpy()
    return {"all": classification_metrics(probs.numpy(), yt),
            "with_modality_only": classification_metrics(probs[has["test"]].numpy(), yt[has["test"].numpy()]),
            "seconds": r.seconds, "best_epoch": r.best_epoch}


_SHARED: dict[str, object] = {}


def train_baselines(cfg: MoEConfig, s: Splits, tcfg: TrainConfig, prior: torch.Tensor) -> dict[str, object]:
    """The dense baseline (same experts, all active) and one model per single modality."""
    return {**train_dense(cfg, s, tcfg), **train_singles(cfg, s, tcfg, prior)}


def train_dense(cfg: MoEConfig, s: Splits, tcfg: TrainConfig) -> dict[str, object]:
    gen = seed_everything(tcfg.seed, tcfg.threads)
    dense = MoEModel(cfg)
    d_res = fit(dense, s.x["train"], s.y["train"], s.x["val"], s.y["val"], tcfg, gen, dense=True, desc="dense")
    calibrate(dense, s.x["val"], s.y["val"], tcfg.abstain_coverage, dense=True, score=tcfg.calibrate_on)
    d = evaluate_model(dense, s.x["test"], s.y["test"], dense=True)
    d.pop("_probs")
    return {"dense": {**d, "seconds": d_res.seconds, "best_epoch": d_res.best_epoch}}


def train_singles(cfg: MoEConfig, s: Splits, tcfg: TrainConfig, prior: torch.Tensor) -> dict[str, object]:
    return {"single_modality": {MODALITIES[m]: single_modality(cfg, s, m, tcfg, prior)
                                for m in range(len(MODALITIES))}}


def _dense_in_worker() -> dict[str, object]:
    return train_dense(_SHARED["cfg"], _SHARED["s"], _SHARED["tcfg"])


def _singles_in_worker() -> dict[str, object]:
    return train_singles(**_SHARED)


def run_training(table: CaseTable, out_dir: Path, cfg: MoEConfig, tcfg: TrainConfig, vocab_size: int = 1000,
                 baselines: bool = True, data_summary: dict[str, object] | None = None,
                 parallel: bool = True) -> dict[str, object]:
    """Train everything, write the model folder, return the metrics dictionary.

    With `parallel`, the dense baseline and the single-modality models train in two more
    processes while the MoE trains here (each single-threaded: on a busy 2-core machine this
    is much faster than multi-threaded kernels, which spin-wait on each other).
    Every model seeds itself, so the results do not depend on this choice.
    """
    t0 = time.perf_counter()
    gen = seed_everything(tcfg.seed, tcfg.threads)
    tokenizer = make_tokenizer(table, cfg, vocab_size)
    cfg = cfg.replace(vocab_size=tokenizer.vocab_size)
    model = MoEModel(cfg)
    rows = {k: table.rows(k) for k in ("train", "val", "test")}
    s = Splits(x={k: attach_pooled(model, table.inputs(r, tokenizer, cfg)) for k, r in rows.items()},
               y={k: table.labels[r] for k, r in rows.items()})
    prior = torch.bincount(s.y["train"], minlength=cfg.n_classes).float()
    prior = prior / prior.sum()
    pending = None
    if baselines and parallel:  # baselines in two more processes (fork shares the tensors), MoE here
        _SHARED.update(cfg=cfg, s=s, tcfg=tcfg, prior=prior)
        pool = ProcessPoolExecutor(max_workers=2, mp_context=get_context("fork"))
        pending = [pool.submit(_dense_in_worker), pool.submit(_singles_in_worker)]
    fit_res = fit(model, s.x["train"], s.y["train"], s.x["val"], s.y["val"], tcfg, gen, desc="MoE")
    abst = calibrate(model, s.x["val"], s.y["val"], tcfg.abstain_coverage, score=tcfg.calibrate_on)
    moe = evaluate_model(model, s.x["test"], s.y["test"])
    probs = moe.pop("_probs").numpy()
    abst_test = abstention_stats(probs, s.y["test"].numpy(), abst.threshold)
    metrics: dict[str, object] = {
        "config": json.loads(cfg.replace(temperature=model.cfg.temperature,
                                         gate_temperature=model.cfg.gate_temperature).to_json()),
        "train_config": asdict(tcfg),
        "data": data_summary or {},
        "moe": {**moe, "best_epoch": fit_res.best_epoch, "seconds": fit_res.seconds, "history": fit_res.history},
        "temperature": model.cfg.temperature,
        "gate_temperature": model.cfg.gate_temperature,
        "abstention": {**asdict(abst), "test_coverage": abst_test["val_coverage"],
                       "test_accuracy_kept": abst_test["val_accuracy_kept"]},
    }
    if baselines and pending is not None:
        for job in pending:
            metrics.update(job.result())
        pool.shutdown()
    elif baselines:
        metrics.update(train_baselines(cfg, s, tcfg, prior))
    metrics["train_seconds_total"] = time.perf_counter() - t0
    metrics["torch_threads"] = torch.get_num_threads()
    sha = save_model(model, tokenizer, out_dir, abst)
    metrics["weights_sha256"] = sha
    (out_dir / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2) + "\n")
    return metrics


def _jsonable(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if not np.isfinite(obj) else round(float(obj), 6)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def data_summary(table: CaseTable, data_dir: Path) -> dict[str, object]:
    """Counts for the model card: splits, labels, missing modalities, and the generator settings."""
    from collections import Counter

    from moe_app.labels import LABELS

    info = {}
    meta = data_dir / "synth_config.json"
    if meta.is_file():
        info["generator"] = json.loads(meta.read_text())
    import re

    seeds = {m.group(1) for c in table.case_ids if (m := re.match(r"synth-(\d+)-", c))}
    if len(seeds) == 1:
        info["synth_seed"] = int(seeds.pop())
    missing = {m: round(float((table.presence[:, i] == 0).float().mean()), 3) for i, m in enumerate(MODALITIES)}
    return {
        "description": f"{len(table.case_ids)} synthetic cases from `moe-app synth` ({data_dir.name}).",
        "splits": dict(Counter(table.splits)),
        "labels": {LABELS[k]: v for k, v in sorted(Counter(table.labels.tolist()).items())},
        "missing": missing,
        **info,
    }
