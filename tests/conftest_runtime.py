"""A tiny randomly initialised model, its ONNX export and 200 synthetic cases, built once per run.

The builders are cached at module level (not session fixtures) so that every runtime test module
shares one export, the slow part (~20 s on 2 cores).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from moe_app.intake import Case, load_case_folder
from moe_app.model import AbstentionRule, MoEConfig, MoEModel, save_model
from moe_app.model.text import train_wordpiece
from moe_app.runtime.export import ensure_graphs
from moe_app.runtime.onnx import OnnxPredictor
from moe_app.runtime.torch import TorchPredictor

N_SYNTH = 200
KEY = b"runtime-tests-pseudonym-key-0001"
ABSTAIN_BELOW = 0.24  # a random model is unsure, so this flags some cases and keeps others


@functools.cache
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="moe-runtime-tests-"))
    atexit.register(shutil.rmtree, root, True)
    return root


@functools.cache
def synth_dir() -> Path:
    """200 synthetic case folders (64 px films), modalities often missing."""
    from moe_app.synth.dataset import generate_dataset
    from moe_app.synth.generate import SynthConfig

    out = _root() / "synth"
    cfg = SynthConfig(image_size=64, p_missing_image=0.35, p_missing_report=0.35, p_missing_vitals=0.35,
                      p_compressed=0.0)
    generate_dataset(out, N_SYNTH, seed=11, cfg=cfg, workers=1, progress=False)
    return out


def synth_folders() -> list[Path]:
    return sorted(p for p in synth_dir().iterdir() if p.is_dir())


@functools.cache
def synth_case_list() -> tuple[Case, ...]:
    """The 200 cases as intake reads them."""
    return tuple(load_case_folder(p, key=KEY) for p in synth_folders())


@functools.cache
def model_dir() -> Path:
    """A tiny model (random weights, WordPiece trained on the synthetic reports) saved like a trained one."""
    reports = [c.report for c in synth_case_list() if c.report]
    tokenizer = train_wordpiece(reports, 300)
    cfg = MoEConfig(image_size=32, gate_thumb=4, max_tokens=32, vocab_size=tokenizer.vocab_size,
                    bert_hidden=16, bert_layers=1, bert_heads=2, token_dim=8, cnn_width=8, hidden=16,
                    dropout=0.0, temperature=1.3)
    torch.manual_seed(0)
    folder = _root() / "model"
    save_model(MoEModel(cfg).eval(), tokenizer, folder, AbstentionRule(threshold=ABSTAIN_BELOW))
    return folder


@functools.cache
def graphs_dir() -> Path:
    return ensure_graphs(model_dir(), cache_dir=_root() / "cache")


@functools.cache
def onnx_predictor_instance() -> OnnxPredictor:
    return OnnxPredictor.load(model_dir(), graphs_dir())


@functools.cache
def torch_predictor_instance() -> TorchPredictor:
    return TorchPredictor.load(model_dir())


@pytest.fixture
def tiny_model_dir() -> Path:
    return model_dir()


@pytest.fixture
def exported_graphs() -> Path:
    return graphs_dir()


@pytest.fixture
def synth_cases() -> tuple[Case, ...]:
    return synth_case_list()


@pytest.fixture
def onnx_predictor() -> OnnxPredictor:
    return onnx_predictor_instance()


@pytest.fixture
def torch_predictor() -> TorchPredictor:
    return torch_predictor_instance()
