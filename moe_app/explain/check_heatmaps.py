"""Do the image heatmaps point at the pneumothorax? A measurement on a synthetic set.

For every pneumothorax case of a split whose prediction selected an image expert, the share
of each image expert's heatmap mass (HiResCAM as the UI shows, or Grad-CAM) that falls on the hemithorax where the generator drew the
pneumothorax, averaged over the case's image experts, then over cases (target >= 0.7).

Side convention: the manifest's `ptx_side` is the PATIENT's side; on the generator's PA/AP
films the patient's right is on the IMAGE LEFT (x < 0.5), as `synth/render.py` draws it. The
script checks this against the manifest's air-rim bounding box (`ptx_x0`, `ptx_x1`, image
fractions) and reports any case where the two disagree.

    moe-app check-heatmaps --data /path/to/synth --model assets/model
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moe_app.errors import ConfigError

MIDLINE = 0.5  # spine at 0.5 +- 0.006 (image width fraction) in the generator


def image_half_of(patient_side: str) -> str:
    """Which half of a PA/AP film shows the patient's `patient_side` ("left"/"right" of the image)."""
    if patient_side not in ("left", "right"):
        raise ConfigError(f"unknown pneumothorax side {patient_side!r} in the manifest")
    return "left" if patient_side == "right" else "right"


def hemithorax_share(heat: np.ndarray, image_half: str, midline: float = MIDLINE) -> float:
    """Share of the heatmap's mass on one image half (NaN when the map is all zero)."""
    total = float(heat.sum())
    if total <= 0.0:
        return float("nan")
    cut = int(round(midline * heat.shape[1]))
    part = heat[:, :cut] if image_half == "left" else heat[:, cut:]
    return float(part.sum()) / total


@dataclass
class SideCheck:
    """The measurement's result."""

    split: str
    target: str  # "predicted" or a label: the class the heatmaps were computed for
    method: str = "hirescam"
    n_pneumothorax: int = 0  # pneumothorax cases with an image in the split
    n_measured: int = 0  # of which an image expert was selected (and a map was non-zero)
    mean_share: float = float("nan")  # the figure the issue asks for
    pointing: float = float("nan")  # share of cases whose hottest pixel is on the right half
    per_expert: dict[str, float] = field(default_factory=dict)
    convention_mismatches: int = 0  # manifest side vs air-rim box disagreements
    seconds_per_case: float = float("nan")

    def report(self) -> str:
        lines = [
            f"split={self.split} target={self.target} method={self.method}: {self.n_measured} of {self.n_pneumothorax} pneumothorax "
            f"cases with an image had an image expert selected",
            f"mean share of heatmap mass on the pneumothorax hemithorax: {self.mean_share:.3f} (target >= 0.70)",
            f"hottest pixel on that hemithorax: {self.pointing:.3f}",
            "per expert: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(self.per_expert.items())),
            f"side convention mismatches (manifest side vs air-rim box): {self.convention_mismatches}",
            f"heatmap time per explained case: {1e3 * self.seconds_per_case:.0f} ms",
        ]
        return "\n".join(lines)


def _rows(data_dir: Path, split: str) -> list[dict[str, str]]:
    manifest = data_dir / "manifest.csv"
    if not manifest.is_file():
        raise ConfigError(f"no manifest.csv in {data_dir}; generate a set with the synth command first")
    with manifest.open(newline="") as f:
        return [r for r in csv.DictReader(f)
                if r["split"] == split and r["label"] == "pneumothorax" and r["has_image"] == "1" and r["ptx_side"]]


def _box_half(row: dict[str, str]) -> str | None:
    try:
        centre = (float(row["ptx_x0"]) + float(row["ptx_x1"])) / 2.0
    except (KeyError, ValueError):
        return None
    return "left" if centre < MIDLINE else "right"


def measure(model_dir: Path, data_dir: Path, split: str = "test", target: str = "predicted",
            limit: int | None = None, include_cross_modal: bool = False, method: str = "hirescam") -> SideCheck:
    """Run the measurement.

    Args:
        model_dir: the trained model folder.
        data_dir: a synthetic set (case folders + manifest.csv).
        split: which split to use.
        target: "predicted" (what the UI shows) or a label such as "pneumothorax".
        limit: at most this many cases (None: all).
        include_cross_modal: also count the cross-modal expert's image heatmap.
        method: heatmap method ("hirescam" as the UI shows, or "gradcam").
    """
    from moe_app.explain.image import image_heatmaps
    from moe_app.intake import load_case_folder
    from moe_app.runtime.torch import TorchPredictor

    predictor = TorchPredictor.load(model_dir)
    lm = predictor.lm
    rows = _rows(data_dir, split)[:limit]
    result = SideCheck(split=split, target=target, method=method, n_pneumothorax=len(rows))
    key = os.urandom(32)  # pseudonyms are irrelevant here
    shares, points, per_expert = [], [], {}
    spent, explained = 0.0, 0
    for row in rows:
        half = image_half_of(row["ptx_side"])
        box = _box_half(row)
        result.convention_mismatches += int(box is not None and box != half)
        case = load_case_folder(data_dir / row["case_id"], key=key)
        pred = predictor.predict([case])[0]
        t0 = time.perf_counter()
        maps = image_heatmaps(lm, case, pred, None if target == "predicted" else target, include_cross_modal,
                              method)
        spent += time.perf_counter() - t0
        explained += int(bool(maps))
        maps = {n: m for n, m in maps.items() if m.max() > 0}
        if not maps:
            continue
        case_shares = [hemithorax_share(m, half) for m in maps.values()]
        for n, s in zip(maps, case_shares, strict=True):
            per_expert.setdefault(n, []).append(s)
        shares.append(float(np.mean(case_shares)))
        hottest = [np.unravel_index(int(np.argmax(m)), m.shape)[1] / m.shape[1] for m in maps.values()]
        points.append(float(np.mean([(x < MIDLINE) == (half == "left") for x in hottest])))
    result.n_measured = len(shares)
    if shares:
        result.mean_share = float(np.mean(shares))
        result.pointing = float(np.mean(points))
        result.per_expert = {n: float(np.mean(v)) for n, v in per_expert.items()}
        result.seconds_per_case = spent / max(explained, 1)
    return result
