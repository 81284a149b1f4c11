"""Report-encoder comparison: each candidate as a report-only classifier, judged on hand-written reports.

The hand-written set (tests/data/report_generalisation.csv) uses phrasing the generator never
produces, so it measures whether the report expert generalises to a clinician's own words.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch

from moe_app.errors import ModelError
from moe_app.labels import LABELS
from moe_app.model.config import MoEConfig, TrainConfig
from moe_app.model.experts import ReportFindingsExpert
from moe_app.model.features import ModelInputs, vitals_vector
from moe_app.model.moe import MoEModel
from moe_app.model.text import ReportTokenizer
from moe_app.train.data import CaseTable
from moe_app.train.loop import seed_everything


def read_report_set(path: Path) -> tuple[list[str], torch.Tensor]:
    """Read a CSV with columns label, report -> texts and label indices."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"label", "report"} <= set(rows[0]):
        raise ModelError(f"{path} needs columns 'label' and 'report'")
    return [r["report"] for r in rows], torch.tensor([LABELS.index(r["label"]) for r in rows])


def _pooled(expert: ReportFindingsExpert, tok: ReportTokenizer, texts: list[str], cfg: MoEConfig) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for s in range(0, len(texts), 128):
            ids, mask = tok.encode(texts[s : s + 128], cfg.max_tokens)
            out.append(expert.pooled(ids, mask))
    return torch.cat(out)  # (N, H)


def train_report_classifier(cfg: MoEConfig, tok: ReportTokenizer, texts: list[str], y: torch.Tensor,
                            tcfg: TrainConfig, epochs: int) -> ReportFindingsExpert:
    """Train the report_findings expert alone (a frozen encoder trains its head on cached vectors)."""
    gen = seed_everything(tcfg.seed, tcfg.threads)
    expert = ReportFindingsExpert(cfg)
    frozen = expert.frozen_encoder
    feats = _pooled(expert, tok, texts, cfg) if frozen else None
    ids, mask = (None, None) if frozen else tok.encode(texts, cfg.max_tokens)
    params = [p for p in expert.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    for _ in range(epochs):
        expert.train()
        order = torch.randperm(len(texts), generator=gen)
        for s in range(0, len(texts), tcfg.batch_size):
            rows = order[s : s + tcfg.batch_size]
            logits = expert.head(feats[rows]) if frozen else expert(ids[rows], mask[rows])
            loss = torch.nn.functional.cross_entropy(logits, y[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return expert.eval()


def accuracy(expert: ReportFindingsExpert, tok: ReportTokenizer, texts: list[str], y: torch.Tensor,
             cfg: MoEConfig) -> float:
    with torch.no_grad():
        logits = expert.head(_pooled(expert, tok, texts, cfg))
    return float((logits.argmax(1) == y).float().mean())


def compare_encoders(table: CaseTable, report_set: Path, candidates: dict[str, tuple[MoEConfig, ReportTokenizer]],
                     tcfg: TrainConfig, epochs: int = 8) -> dict[str, dict[str, float]]:
    """Train each candidate on the training reports; accuracy on val reports and on the hand-written set."""
    texts_h, y_h = read_report_set(report_set)
    has = [i for i, r in enumerate(table.reports) if r]
    split = {k: [i for i in has if table.splits[i] == k] for k in ("train", "val")}
    results = {}
    for name, (cfg, tok) in candidates.items():
        t0 = time.perf_counter()
        tr = [table.reports[i] for i in split["train"]]
        expert = train_report_classifier(cfg, tok, tr, table.labels[split["train"]], tcfg, epochs)
        va = [table.reports[i] for i in split["val"]]
        results[name] = {
            "val_accuracy": accuracy(expert, tok, va, table.labels[split["val"]], cfg),
            "handwritten_accuracy": accuracy(expert, tok, texts_h, y_h, cfg),
            "seconds": time.perf_counter() - t0,
        }
    return results


def evaluate_handwritten(model: MoEModel, tok: ReportTokenizer, report_set: Path) -> dict[str, object]:
    """The trained MoE on the hand-written reports as report-only cases (and its report expert alone)."""
    texts, y = read_report_set(report_set)
    ids, mask = tok.encode(texts, model.cfg.max_tokens)
    n, s = len(texts), model.cfg.image_size
    presence = torch.tensor([[0.0, 1.0, 0.0]]).repeat(n, 1)  # (N, 3) report only
    x = ModelInputs(image=torch.zeros(n, 1, s, s), input_ids=ids, attention_mask=mask,
                    vitals=torch.from_numpy(np.stack([vitals_vector(None, None)] * n)), presence=presence)
    model.eval()
    with torch.no_grad():
        moe = model(x).probs.argmax(1)
        rf = model.run_expert("report_findings", x).argmax(1)
    return {"n": n, "moe": float((moe == y).float().mean()), "report_findings": float((rf == y).float().mean()),
            "per_class": {LABELS[c]: round(float((moe[y == c] == c).float().mean()), 3) for c in range(len(LABELS))}}
