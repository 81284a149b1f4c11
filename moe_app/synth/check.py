"""`synth --check`: is each modality insufficient alone and the combination sufficient?

Quick scikit-learn logistic-regression baselines per modality (trained on the train split,
on every case that has that modality) and one combined baseline (late fusion of the three
per-modality probabilities, trained on cases that have all three), plus the same fusion
with each modality left out, all scored on the test cases that have every modality, so the
numbers are comparable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler

from moe_app.labels import LABELS
from moe_app.synth.dataset import read_manifest
from moe_app.synth.features import image_features, read_case_folder, vitals_features

MODALITY_ORDER: tuple[str, ...] = ("image", "report", "vitals", "combined")
# late-fusion baselines: all three, and each with one modality left out
FUSIONS: dict[str, tuple[str, ...]] = {
    "combined": ("image", "report", "vitals"),
    "no_image": ("report", "vitals"),
    "no_report": ("image", "vitals"),
    "no_vitals": ("image", "report"),
}
MAX_SINGLE = 0.80  # the bound on the best single modality
MIN_COMBINED = 0.95  # the bound on the combined baseline


@dataclass(frozen=True)
class CheckResult:
    """Test accuracy per modality on the test cases that have every modality."""

    n_cases: int
    n_train: dict[str, int]  # training cases per baseline
    n_test: int  # test cases with all three modalities
    accuracy: dict[str, float]  # "image", "report", "vitals", "combined", "no_image", ...
    recall: dict[str, dict[str, float]]  # baseline -> label -> sensitivity
    macro_auroc: dict[str, float] = field(default_factory=dict)  # one-vs-rest, macro average

    def violations(self, max_single: float = MAX_SINGLE, min_combined: float = MIN_COMBINED) -> list[str]:
        """Plain-language list of the bounds this set misses (empty when it meets them)."""
        out = [
            f"{m} alone reaches {self.accuracy[m]:.3f} (> {max_single:.2f})"
            for m in ("image", "report", "vitals")
            if self.accuracy[m] > max_single
        ]
        if self.accuracy["combined"] < min_combined:
            out.append(f"combined reaches only {self.accuracy['combined']:.3f} (< {min_combined:.2f})")
        return out

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class _Row:
    label: int
    split: str
    image: np.ndarray | None
    report: str | None
    vitals: np.ndarray | None


def _featurise(folder: Path, label: str, split: str) -> _Row:
    film, report, vitals = read_case_folder(folder)
    return _Row(
        label=LABELS.index(label),
        split=split,
        image=image_features(film) if film is not None else None,
        report=report,
        vitals=vitals_features(vitals) if vitals is not None else None,
    )


def load_rows(data_dir: Path, workers: int = 2) -> list[_Row]:
    """Features of every case listed in data_dir/manifest.csv."""
    manifest = read_manifest(data_dir / "manifest.csv")
    args = [(data_dir / r["case_id"], r["label"], r["split"]) for r in manifest]
    if workers <= 1:
        return [_featurise(*a) for a in args]
    with get_context("fork").Pool(workers) as pool:
        return pool.starmap(partial(_featurise), args, chunksize=16)


_C = {"image": 0.05, "report": 4.0, "vitals": 1.0}  # inverse regularisation per baseline


def _lr(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=3000)


def _dense_block(rows: list[_Row], attr: str, scaler: StandardScaler) -> np.ndarray:
    return scaler.transform(np.stack([getattr(r, attr) for r in rows]))


def _recall(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {lab: float((pred[y == i] == i).mean()) if (y == i).any() else float("nan") for i, lab in enumerate(LABELS)}


def _single(attr: str, train: list[_Row], full_train: list[_Row], test: list[_Row]) -> tuple[np.ndarray, Any, Any, int]:
    """Fit one modality's baseline on every train case that has it.

    Returns:
        (test probabilities, features of the complete train cases, features of the test cases, n train).
    """
    have = [r for r in train if getattr(r, attr) is not None]
    y = [r.label for r in have]
    if attr == "report":
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        model = _lr(_C[attr]).fit(vec.fit_transform([r.report for r in have]), y)
        x_full, x_test = vec.transform([r.report for r in full_train]), vec.transform([r.report for r in test])
    else:
        scaler = StandardScaler().fit(np.stack([getattr(r, attr) for r in have]))
        model = _lr(_C[attr]).fit(_dense_block(have, attr, scaler), y)
        x_full, x_test = _dense_block(full_train, attr, scaler), _dense_block(test, attr, scaler)
    return model.predict_proba(x_test), x_full, x_test, len(have)


def _log_probs(attr: str, x_full: Any, y_full: np.ndarray, x_test: Any) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold log-probabilities on the complete train cases, and on the test cases."""
    oof = cross_val_predict(_lr(_C[attr]), x_full, y_full, cv=5, method="predict_proba")
    test = _lr(_C[attr]).fit(x_full, y_full).predict_proba(x_test)
    return np.log(np.clip(oof, 1e-4, 1.0)), np.log(np.clip(test, 1e-4, 1.0))


def run_check(rows: list[_Row], n_cases: int | None = None) -> CheckResult:
    """Train the baselines on the train split and score them on the complete test cases."""
    train = [r for r in rows if r.split == "train"]
    complete = [r for r in rows if r.image is not None and r.report is not None and r.vitals is not None]
    test = [r for r in complete if r.split == "test"]
    full_train = [r for r in complete if r.split == "train"]
    assert test and full_train, "too few cases with all three modalities: generate more cases"
    y_test = np.array([r.label for r in test])
    y_full = np.array([r.label for r in full_train])
    proba: dict[str, np.ndarray] = {}
    n_train: dict[str, int] = {}
    stacked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for attr in ("image", "report", "vitals"):
        proba[attr], x_full, x_test, n_train[attr] = _single(attr, train, full_train, test)
        stacked[attr] = _log_probs(attr, x_full, y_full, x_test)
    # late fusion: logistic regression on the baselines' out-of-fold log-probabilities
    for name, parts in FUSIONS.items():
        model = _lr(1.0).fit(np.hstack([stacked[p][0] for p in parts]), y_full)
        proba[name] = model.predict_proba(np.hstack([stacked[p][1] for p in parts]))
        n_train[name] = len(full_train)
    order = MODALITY_ORDER + tuple(k for k in FUSIONS if k != "combined")
    preds = {k: proba[k].argmax(axis=1) for k in order}
    return CheckResult(
        n_cases=n_cases if n_cases is not None else len(rows), n_train=n_train, n_test=len(test),
        accuracy={k: round(float((preds[k] == y_test).mean()), 4) for k in order},
        recall={k: {lab: round(v, 4) for lab, v in _recall(y_test, preds[k]).items()} for k in order},
        macro_auroc={k: round(float(roc_auc_score(y_test, proba[k], multi_class="ovr", average="macro")), 4) for k in order},
    )


def check_table(result: CheckResult) -> object:
    """A rich Table: accuracy, macro AUROC and per-class sensitivity of each baseline."""
    from rich.table import Table

    table = Table(title=f"Baselines on {result.n_test} complete test cases ({result.n_cases} generated)")
    table.add_column("baseline")
    table.add_column("accuracy", justify="right")
    table.add_column("macro AUROC", justify="right")
    for lab in LABELS:
        table.add_column(f"sens. {lab}", justify="right")
    for m in result.accuracy:
        auroc = result.macro_auroc.get(m)
        table.add_row(
            m, f"{result.accuracy[m]:.3f}", "-" if auroc is None else f"{auroc:.3f}",
            *(f"{result.recall[m][lab]:.2f}" for lab in LABELS),
        )
    return table
