"""Helpers of the explanation tests: a trained model and synthetic cases with known geometry.

The model is the shipped checkpoint (assets/model) when present; otherwise a tiny MoE trained
here in a few seconds on generator cases, so every test also runs on a fresh checkout. Cases
come from the synthetic generator in memory (no files), so the pneumothorax side is known.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from moe_app.intake.case import Case, ImageStudy, WindowPreset
from moe_app.labels import LABELS
from moe_app.model import LoadedModel, MoEConfig, MoEModel, load_model
from moe_app.model.io import AbstentionRule
from moe_app.model.text import train_wordpiece
from moe_app.synth.generate import SynthCase, SynthConfig, generate_case

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "model"
TINY_CFG = MoEConfig(image_size=32, gate_thumb=4, max_tokens=64, bert_hidden=32, bert_layers=1, bert_heads=2,
                     token_dim=16, cnn_width=8, hidden=32, dropout=0.0)
ALL_PRESENT = SynthConfig(image_size=128, p_missing_image=0.0, p_missing_report=0.0, p_missing_vitals=0.0,
                          p_ambiguous=0.0, p_subtle=0.0)


@dataclass(frozen=True)
class Example:
    case: Case
    synth: SynthCase


def to_case(s: SynthCase) -> Case:
    """An in-memory intake Case from a generator case (film used as the windowed model input)."""
    study = None
    if s.film is not None:
        pix = s.film.pixels.astype(np.float32)
        study = ImageStudy(frames=(pix,), model_input=pix, windows=(WindowPreset("default", 0.5, 1.0),),
                           photometric="MONOCHROME2", series_description="synthetic film", header={},
                           transfer_syntax="Explicit VR Little Endian", n_series=1)
    return Case(case_id=s.case_id, pseudonym=s.case_id, image=study, report=s.report, vitals=s.vitals,
                sex=s.sex if s.vitals is not None else None)


def synth_examples(n: int, seed: int, cfg: SynthConfig = ALL_PRESENT) -> list[Example]:
    return [Example(to_case(s), s) for s in (generate_case(i, seed, cfg) for i in range(n))]


def train_tiny(seed: int = 0, n: int = 96, steps: int = 40) -> LoadedModel:
    """A tiny MoE whose report experts are trained on generator reports (seconds on 2 CPU cores).

    Only the report experts are trained: the model-randomisation check compares their word
    attributions with those of a randomised copy. The rest keeps its random initialisation,
    which is all the other tests (exact decomposition, what-if, heatmap invariants) need.
    """
    gen_cfg = SynthConfig(p_missing_image=1.0, p_missing_report=0.0, p_missing_vitals=1.0)  # reports only
    synth = [generate_case(i, 1000 + seed, gen_cfg) for i in range(n)]
    tok = train_wordpiece([s.report or "" for s in synth], 600)
    cfg = TINY_CFG.replace(vocab_size=tok.vocab_size)
    torch.manual_seed(seed)
    model = MoEModel(cfg)
    ids, mask = tok.encode([s.report or "" for s in synth], cfg.max_tokens)  # (N, T)
    y = torch.tensor([LABELS.index(s.label) for s in synth])
    experts = [model.experts[name] for name in ("report_findings", "report_keywords")]
    opt = torch.optim.Adam([p for e in experts for p in e.parameters()], lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        rows = torch.randperm(n, generator=gen)[:32]
        loss = sum(F.cross_entropy(e(input_ids=ids[rows], attention_mask=mask[rows]), y[rows]) for e in experts)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return LoadedModel(model=model, cfg=cfg, tokenizer=tok, abstention=AbstentionRule(threshold=0.4),
                       weights_sha256="tiny" + "0" * 60, model_dir=Path("."))


@lru_cache(maxsize=1)
def trained_model() -> LoadedModel:
    """The shipped model if there is one, else a tiny one trained now (once per process).

    MOE_APP_EXPLAIN_TINY=1 forces the tiny model (to check the tests on a fresh checkout).
    """
    if os.environ.get("MOE_APP_EXPLAIN_TINY") != "1" and (SHIPPED / "model.safetensors").is_file():
        return load_model(SHIPPED)
    return train_tiny()


@lru_cache(maxsize=1)
def examples() -> tuple[Example, ...]:
    """Eight generator cases with image, report and vitals, several diagnoses."""
    return tuple(synth_examples(8, seed=4242))
