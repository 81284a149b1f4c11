"""Simple per-modality features of case folders, for the quick baselines of `synth --check`.

Deliberately plain (downsampled pixels and region statistics, bag of words, raw values with
missing indicators): the check asks what a simple model can get from each modality.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pydicom

from moe_app.labels import SEX_KEY, VITAL_KEYS
from moe_app.synth.generate import IMAGE_FILE, REPORT_FILE, VITALS_FILE

GRID = 64  # the film is reduced to GRID x GRID block means first
LOG_KEYS = ("bnp_pg_per_ml", "d_dimer_ng_per_ml")  # skewed labs enter as logarithms


def read_film(path: Path) -> np.ndarray:
    """Read a DICOM film into (H, W) float32 in [0, 1], bright = dense, default window applied."""
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.astype(np.float32)
    arr = arr * float(getattr(ds, "RescaleSlope", 1.0)) + float(getattr(ds, "RescaleIntercept", 0.0))
    centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centre is not None and width is not None:
        c = float(centre[0] if isinstance(centre, pydicom.multival.MultiValue) else centre)
        w = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
    else:
        c, w = float(arr.mean()), float(arr.max() - arr.min())
    out = np.clip((arr - (c - w / 2.0)) / max(w, 1.0), 0.0, 1.0)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 1.0 - out
    return out


def _blocks(img: np.ndarray, n: int) -> np.ndarray:
    """Block means to (n, n); crops the few edge pixels that do not fill a block."""
    h = img.shape[0] // n * n
    w = img.shape[1] // n * n
    return img[:h, :w].reshape(n, h // n, n, w // n).mean(axis=(1, 3))  # (n, n)


def image_features(film: np.ndarray) -> np.ndarray:
    """Downsampled film, local texture energy and a heart-level horizontal profile.

    Args:
        film: (H, W) in [0, 1], bright = dense.

    Returns:
        1-D float32 feature vector (fixed length).
    """
    small = _blocks(film, GRID)  # (64, 64)
    small = (small - small.mean()) / max(float(small.std()), 1e-6)
    coarse = _blocks(small, 16).ravel()  # (256,)
    smooth = _blocks(small, 32).repeat(2, axis=0).repeat(2, axis=1)  # (64, 64)
    energy = _blocks(np.abs(small - smooth), 8)  # (8, 8) local texture (vessel markings)
    rows = small[int(GRID * 0.55) : int(GRID * 0.75)].mean(axis=0)  # (64,)
    profile = rows.reshape(32, 2).mean(axis=1)  # (32,)
    # one-sided disease (pneumothorax, lobar opacity, effusion) shows as left/right asymmetry
    means = _blocks(small, 8)  # (8, 8)
    asym_mean = np.abs(means[:, :4] - means[:, ::-1][:, :4]).ravel()  # (32,)
    asym_energy = np.abs(energy[:, :4] - energy[:, ::-1][:, :4]).ravel()  # (32,)
    return np.concatenate([coarse, energy.ravel(), profile, asym_mean, asym_energy]).astype(np.float32)


def vitals_features(values: dict[str, float | str] | None) -> np.ndarray:
    """Values (logs for skewed labs) plus a missing indicator per field, plus sex one-hot."""
    values = values or {}
    out: list[float] = []
    for key in VITAL_KEYS:
        v = values.get(key)
        if v is None:
            out += [0.0, 1.0]
        else:
            x = float(v)
            out += [math.log1p(x) if key in LOG_KEYS else x, 0.0]
    sex = values.get(SEX_KEY)
    out += [float(sex == "F"), float(sex == "M")]
    return np.asarray(out, dtype=np.float32)


def read_case_folder(folder: Path) -> tuple[np.ndarray | None, str | None, dict[str, float | str] | None]:
    """(film, report, vitals) of one case folder; None for an absent modality."""
    image = folder / IMAGE_FILE
    report = folder / REPORT_FILE
    vitals = folder / VITALS_FILE
    return (
        read_film(image) if image.exists() else None,
        report.read_text(encoding="utf-8") if report.exists() else None,
        json.loads(vitals.read_text(encoding="utf-8")) if vitals.exists() else None,
    )
