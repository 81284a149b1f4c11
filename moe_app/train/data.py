"""Training data: a manifest of case folders -> a feature cache decoded once.

Epochs must not re-decode DICOMs, so `build_cache` runs intake on every case once and stores
the resized image, the report text, the vitals vector and the presence mask in one
`features_<size>.pt` file next to the data. Tokenization happens at training time (it is
cheap and depends on the tokenizer being trained).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from moe_app.errors import CaseError, ModelError
from moe_app.intake.case import Case
from moe_app.labels import LABELS, MODALITIES
from moe_app.model.config import MoEConfig
from moe_app.model.features import ModelInputs, model_modalities, resize_image, vitals_vector
from moe_app.model.text import ReportTokenizer

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CaseTable:
    """Every case of a data set as arrays (row i = case i), ready to tokenize and batch."""

    case_ids: tuple[str, ...]
    labels: torch.Tensor  # (N,) int64 class index into LABELS
    splits: tuple[str, ...]  # "train" | "val" | "test" per case
    images: torch.Tensor  # (N, 1, S, S) float16
    reports: tuple[str, ...]  # "" when absent
    vitals: torch.Tensor  # (N, 2V + 2) float32
    presence: torch.Tensor  # (N, 3) float32

    def rows(self, split: str) -> torch.Tensor:
        return torch.tensor([i for i, s in enumerate(self.splits) if s == split], dtype=torch.long)

    def inputs(self, rows: torch.Tensor, tokenizer: ReportTokenizer, cfg: MoEConfig) -> ModelInputs:
        """Model inputs for the given rows (tokenized with `tokenizer`)."""
        ids, mask = tokenizer.encode([self.reports[i] for i in rows.tolist()], cfg.max_tokens)
        return ModelInputs(image=self.images[rows].float(), input_ids=ids, attention_mask=mask,
                           vitals=self.vitals[rows], presence=self.presence[rows])


def table_from_cases(cases: Sequence[Case], labels: Sequence[str], splits: Sequence[str],
                     image_size: int) -> CaseTable:
    """Build a table from in-memory cases (used by `build_cache` and by tests)."""
    bad = sorted(set(labels) - set(LABELS))
    if bad:
        raise ModelError(f"unknown labels in the training data: {bad}")
    images, vitals, presence = [], [], []
    for case in cases:
        mods = model_modalities(case)
        images.append(resize_image(case.image.model_input, image_size) if mods["image"]
                      else torch.zeros(1, image_size, image_size))
        vitals.append(vitals_vector(case.vitals, case.sex) if mods["vitals"] else vitals_vector(None, None))
        presence.append([float(mods[m]) for m in MODALITIES])
    return CaseTable(
        case_ids=tuple(c.case_id for c in cases),
        labels=torch.tensor([LABELS.index(y) for y in labels], dtype=torch.long),
        splits=tuple(splits),
        images=torch.stack(images).half(),  # (N, 1, S, S)
        reports=tuple((c.report or "") if model_modalities(c)["report"] else "" for c in cases),
        vitals=torch.from_numpy(np.stack(vitals)),  # (N, 2V + 2)
        presence=torch.tensor(presence, dtype=torch.float32),  # (N, 3)
    )


def read_manifest(data_dir: Path) -> list[dict[str, str]]:
    path = data_dir / "manifest.csv"
    if not path.is_file():
        raise ModelError(f"{data_dir} has no manifest.csv; generate data with `moe-app synth --out {data_dir}`")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for col in ("case_id", "label", "split"):
        if rows and col not in rows[0]:
            raise ModelError(f"manifest.csv in {data_dir} has no {col!r} column")
    return rows


def build_cache(data_dir: Path, image_size: int, rebuild: bool = False) -> CaseTable:
    """Decode every case in the manifest once (via intake) and cache the arrays next to the data."""
    from moe_app.config import IntakeLimits
    from moe_app.intake import load_case_folder

    cache = data_dir / f"features_{image_size}.pt"
    if cache.is_file() and not rebuild:
        return CaseTable(**torch.load(cache, weights_only=False))
    rows = read_manifest(data_dir)
    cases, labels, splits = [], [], []
    limits = IntakeLimits()
    for row in tqdm(rows, desc="decoding cases", unit="case"):
        try:
            case = load_case_folder(data_dir / row["case_id"], key=b"training-cache", limits=limits)
        except CaseError as err:
            log.warning("skipping case %s: %s", row["case_id"], err)
            continue
        cases.append(case)
        labels.append(row["label"])
        splits.append(row["split"])
    table = table_from_cases(cases, labels, splits, image_size)
    torch.save(table.__dict__, cache)
    return table
