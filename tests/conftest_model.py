"""Tiny in-memory cases and a tiny model config for the model/training tests (no files, no synth)."""

from __future__ import annotations

import numpy as np

from moe_app.intake.case import Case, ImageStudy, WindowPreset
from moe_app.labels import LABELS
from moe_app.model.config import MoEConfig

REPORT_TEMPLATES = {
    "normal": "lungs are clear. no effusion. heart size normal.",
    "pneumonia": "consolidation in the right lower lobe with air bronchograms.",
    "heart_failure": "cardiomegaly with bilateral effusions and upper lobe diversion.",
    "pneumothorax": "visible pleural line with absent lung markings at the apex.",
    "pulmonary_embolism": "no acute findings. query pulmonary embolism, tachycardic.",
}


def make_image(label: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    img = rng.uniform(0.2, 0.3, (size, size)).astype(np.float32)
    c = size // 2
    if label == "pneumonia":
        img[c : c + 16, 8:24] += 0.5
    elif label == "heart_failure":
        img[c - 12 : c + 12, c - 16 : c + 16] += 0.4
    elif label == "pneumothorax":
        img[:, 6] = 1.0
    return np.clip(img, 0, 1)


def make_case(i: int, label: str, rng: np.random.Generator, drop: str | None = None) -> Case:
    pix = make_image(label, rng)
    study = ImageStudy(frames=(pix,), model_input=pix, windows=(WindowPreset("default", 0.5, 1.0),),
                       photometric="MONOCHROME2", series_description="test", header={},
                       transfer_syntax="Explicit VR Little Endian", n_series=1)
    hr = {"pulmonary_embolism": 120.0, "pneumonia": 105.0}.get(label, 75.0)
    vitals = {"heart_rate_bpm": hr + rng.normal(0, 5), "temperature_c": 38.5 if label == "pneumonia" else 36.8,
              "d_dimer_ng_per_ml": 2000.0 if label == "pulmonary_embolism" else 300.0}
    return Case(case_id=f"case{i:04d}", pseudonym=f"p{i}",
                image=None if drop == "image" else study,
                report=None if drop == "report" else REPORT_TEMPLATES[label],
                vitals=None if drop == "vitals" else vitals, sex="F" if i % 2 else "M")


def make_cases(n: int, seed: int = 0) -> tuple[list[Case], list[str]]:
    rng = np.random.default_rng(seed)
    labels = [LABELS[i % len(LABELS)] for i in range(n)]
    drops = [None, None, "image", "report", "vitals"]
    cases = [make_case(i, y, rng, drops[(i // 5) % 5]) for i, y in enumerate(labels)]
    return cases, labels


def tiny_config() -> MoEConfig:
    """A model small enough for unit tests (32 px images, 24 tokens, 1-layer BERT)."""
    return MoEConfig(image_size=32, gate_thumb=4, max_tokens=24, vocab_size=200, bert_hidden=16,
                     bert_layers=1, bert_heads=2, token_dim=8, cnn_width=8, hidden=16, dropout=0.0)
