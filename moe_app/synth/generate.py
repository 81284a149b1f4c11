"""One synthetic case from (seed, index), written as a case folder of the intake contract.

Every random choice of case `index` comes from `SeedSequence([seed, index])`, split into
independent streams per component, so a case is identical whatever the worker count and
whichever modalities happen to be dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moe_app.labels import LABELS, SEX_KEY, VITAL_KEYS
from moe_app.synth.anatomy import sample_anatomy
from moe_app.synth.dicom import DicomStyle, build_dataset, sample_style, write_dicom
from moe_app.synth.findings import Findings, merge, sample_findings
from moe_app.synth.identity import Identity, sample_identity
from moe_app.synth.render import Film, render_film
from moe_app.synth.report import ReportConfig, write_report
from moe_app.synth.vitals import sample_vitals

IMAGE_FILE = "image.dcm"
REPORT_FILE = "report.txt"
VITALS_FILE = "vitals.json"


@dataclass(frozen=True)
class SynthConfig:
    """What the generator draws; defaults are the shipped training set's."""

    image_size: int = 512  # rows = columns of the film
    class_weights: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2)  # in LABELS order
    p_missing_image: float = 0.1
    p_missing_report: float = 0.1
    p_missing_vitals: float = 0.1
    p_ambiguous: float = 0.03  # cases that also show a second diagnosis's pattern
    p_subtle: float = 0.18  # faint film findings (pneumonia, heart failure, pneumothorax)
    p_monochrome1: float = 0.1
    p_compressed: float = 0.2
    report: ReportConfig = field(default_factory=ReportConfig)
    split: tuple[float, float] = (0.7, 0.85)  # hash cut points: train < 0.7 <= val < 0.85 <= test

    def __post_init__(self) -> None:
        assert len(self.class_weights) == len(LABELS), "one class weight per label"
        assert abs(sum(self.class_weights) - 1.0) < 1e-6, "class weights must sum to 1"


@dataclass(frozen=True)
class SynthCase:
    """One generated case, before it is written to disk."""

    case_id: str
    label: str
    split: str  # "train" / "val" / "test"
    ambiguous: bool
    mimic: str | None  # the second diagnosis an ambiguous case resembles
    subtle: bool
    findings: Findings
    identity: Identity
    sex: str
    uid_key: str  # DICOM UIDs derive from it
    style: DicomStyle
    film: Film | None  # None: no image in this case
    report: str | None
    vitals: dict[str, float] | None  # None: no vitals.json in this case


def split_of(case_id: str, cuts: tuple[float, float] = (0.7, 0.85)) -> str:
    """Stable split from a hash of the case id (independent of n, seed order, workers)."""
    u = int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "big") / 2.0**64
    return "train" if u < cuts[0] else ("val" if u < cuts[1] else "test")


def case_id_of(seed: int, index: int) -> str:
    return f"synth-{seed}-{index:05d}"


def _presence(rng: np.random.Generator, cfg: SynthConfig) -> tuple[bool, bool, bool]:
    u = rng.random(3)
    missing = u < np.array([cfg.p_missing_image, cfg.p_missing_report, cfg.p_missing_vitals])
    if missing.all():  # never all three: keep the one that was closest to being kept
        missing[int(np.argmax(u / np.array([cfg.p_missing_image, cfg.p_missing_report, cfg.p_missing_vitals])))] = False
    return bool(not missing[0]), bool(not missing[1]), bool(not missing[2])


def generate_case(index: int, seed: int, cfg: SynthConfig = SynthConfig()) -> SynthCase:
    """Generate case `index` of the set drawn with `seed`.

    Args:
        index: position in the set (0-based).
        seed: the set's seed.
        cfg: generator configuration.

    Returns:
        The case, identical for the same (index, seed, cfg).
    """
    streams = np.random.SeedSequence([seed, index]).spawn(6)
    main, r_img, r_rep, r_vit, r_id, r_dcm = (np.random.default_rng(s) for s in streams)
    label = LABELS[int(main.choice(len(LABELS), p=np.asarray(cfg.class_weights)))]
    ambiguous = bool(main.random() < cfg.p_ambiguous)
    others = [k for k in LABELS if k != label]
    mimic_draw = others[int(main.integers(len(others)))]
    mimic = mimic_draw if ambiguous else None
    subtle = bool(main.random() < cfg.p_subtle) and label in ("pneumonia", "heart_failure", "pneumothorax")
    severity = float(main.random())
    has_image, has_report, has_vitals = _presence(main, cfg)

    findings = sample_findings(label, r_img, subtle)
    if mimic is not None:
        findings = merge(findings, sample_findings(mimic, r_img, subtle=True))
    vitals, sex = sample_vitals(label, r_vit, severity, mimic)
    female = sex == "F"
    anatomy = sample_anatomy(r_img, female)
    identity = sample_identity(r_id, sex, vitals.get("age_years", 50.0))
    style = sample_style(r_dcm, cfg.p_monochrome1, cfg.p_compressed)
    film = render_film(anatomy, findings, cfg.image_size, r_img) if has_image else None
    report = write_report(label, findings, identity, style.view, r_rep, cfg.report, mimic) if has_report else None
    case_id = case_id_of(seed, index)
    return SynthCase(
        case_id=case_id, label=label, split=split_of(case_id, cfg.split), ambiguous=ambiguous, mimic=mimic,
        subtle=subtle, findings=findings, identity=identity, sex=sex, uid_key=f"{seed}/{index}", style=style,
        film=film, report=report, vitals=vitals if has_vitals else None,
    )


def vitals_json(vitals: dict[str, float], sex: str) -> str:
    """vitals.json text: VITAL_KEYS order, then sex; whole numbers written as integers."""
    out: dict[str, float | int | str] = {}
    for key in VITAL_KEYS:
        if key in vitals:
            v = vitals[key]
            out[key] = int(v) if float(v).is_integer() else v
    out[SEX_KEY] = sex
    return json.dumps(out, indent=2) + "\n"


def write_case(case: SynthCase, out_dir: Path) -> Path:
    """Write `case` as the folder out_dir/<case_id>/ (image.dcm, report.txt, vitals.json).

    Returns:
        The case folder.
    """
    folder = Path(out_dir) / case.case_id
    folder.mkdir(parents=True, exist_ok=True)
    if case.film is not None:
        ds = build_dataset(case.film.pixels, case.identity, case.sex, case.style, case.uid_key)
        write_dicom(ds, folder / IMAGE_FILE)
    if case.report is not None:
        (folder / REPORT_FILE).write_text(case.report, encoding="utf-8")
    if case.vitals is not None:
        (folder / VITALS_FILE).write_text(vitals_json(case.vitals, case.sex), encoding="utf-8")
    return folder
