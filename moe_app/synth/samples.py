"""The curated sample_cases/ shipped with the app: found by rule in a fixed seed, so reproducible.

Each slot says what the case must show; the first index of `SAMPLE_SEED` whose case fits
is taken, and its encoding/missing modality is then set as the slot asks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from moe_app.synth.dataset import manifest_row, write_manifest
from moe_app.synth.generate import SynthCase, SynthConfig, generate_case, write_case

SAMPLE_SEED = 2026
SAMPLE_SIZE = 384  # pixels; keeps the committed folder small


@dataclass(frozen=True)
class Slot:
    name: str  # folder name
    label: str
    shows: str  # one line for the README table
    fits: Callable[[SynthCase], bool]
    drop: str | None = None  # "image" / "report" / "vitals"
    photometric: str = "MONOCHROME2"
    transfer_syntax: str = JPEG2000Lossless


def _clear(c: SynthCase) -> bool:
    return not c.subtle and not c.ambiguous


def _hedged_ptx(report: str) -> bool:
    text = report.lower()
    return "apical" in text and any(w in text for w in ("possible tiny", "? thin", "questionable", "may represent"))


SLOTS: tuple[Slot, ...] = (
    Slot("01-normal", "normal", "Normal film, unremarkable vitals and report; uncompressed DICOM.",
         lambda c: _clear(c) and c.findings == type(c.findings)(), transfer_syntax=ExplicitVRLittleEndian),
    Slot("02-normal-no-report", "normal", "Normal film and vitals; no report (missing modality).", _clear, drop="report"),
    Slot("03-pneumonia-lobar", "pneumonia", "Lobar consolidation with air bronchograms, fever and raised WBC.",
         lambda c: _clear(c) and any(x.lobar and x.bronchograms for x in c.findings.consolidations)),
    Slot("04-pneumonia-monochrome1", "pneumonia", "Patchy consolidation; stored as MONOCHROME1 (inverted grey scale).",
         lambda c: _clear(c) and any(not x.lobar for x in c.findings.consolidations), photometric="MONOCHROME1"),
    Slot("05-heart-failure", "heart_failure", "Cardiomegaly, bilateral effusions, perihilar haze; high BNP.",
         lambda c: _clear(c) and c.findings.heart_scale > 1.3 and min(c.findings.effusion_right, c.findings.effusion_left) > 0.08),
    Slot("06-heart-failure-no-vitals", "heart_failure", "Enlarged heart and effusion on film and report; no vitals.json.",
         _clear, drop="vitals"),
    Slot("07-pneumothorax-right", "pneumothorax", "Right pneumothorax: visible pleural line, no markings laterally; RLE Lossless.",
         lambda c: _clear(c) and c.findings.ptx_side == "right" and c.findings.ptx_depth > 0.06, transfer_syntax=RLELossless),
    Slot("08-pneumothorax-left", "pneumothorax", "Left pneumothorax; near-normal vitals (vitals alone cannot tell).",
         lambda c: _clear(c) and c.findings.ptx_side == "left" and c.findings.ptx_depth > 0.05),
    Slot("09-pneumothorax-subtle", "pneumothorax", "Tiny apical pneumothorax, easily missed; report hedges.",
         lambda c: c.subtle and not c.ambiguous and _hedged_ptx(c.report or "")),
    Slot("10-pe-typical", "pulmonary_embolism", "Normal-looking film; tachycardia, hypoxia, high D-dimer.",
         lambda c: _clear(c) and c.vitals is not None and c.vitals.get("d_dimer_ng_per_ml", 0) > 1500
         and c.vitals.get("heart_rate_bpm", 0) > 100),
    Slot("11-pe-no-image", "pulmonary_embolism", "Report and vitals only (no DICOM).", _clear, drop="image"),
    Slot("12-pe-subtle-sign", "pulmonary_embolism", "Minor sign on film (small effusion/oligaemia/atelectasis); MONOCHROME1.",
         lambda c: _clear(c) and c.findings != type(c.findings)(), photometric="MONOCHROME1"),
    Slot("13-ambiguous", "", "Ambiguous case: shows a second diagnosis's pattern (see manifest mimic).",
         lambda c: c.ambiguous),
    Slot("14-pneumonia-no-image", "pneumonia", "Pneumonia with report and vitals only.", _clear, drop="image"),
)


def _find(slot: Slot, cfg_small: SynthConfig, used: set[int], limit: int = 5000) -> int:
    for index in range(limit):
        if index in used:
            continue
        case = generate_case(index, SAMPLE_SEED, cfg_small)
        complete = case.film is not None and case.report is not None and case.vitals is not None
        if complete and (not slot.label or case.label == slot.label) and slot.fits(case):
            return index
    raise RuntimeError(f"no case fits sample slot {slot.name}")  # a bug in the slot rules


def sample_indices() -> dict[str, int]:
    """Index (in SAMPLE_SEED) of the case that fills each slot, slots taken in order."""
    cfg_small = SynthConfig(image_size=32)  # the search ignores the film, so draw it tiny
    used: set[int] = set()
    out: dict[str, int] = {}
    for slot in SLOTS:
        out[slot.name] = _find(slot, cfg_small, used)
        used.add(out[slot.name])
    return out


def build_samples(out: Path, size: int = SAMPLE_SIZE) -> list[Path]:
    """Write the curated sample cases and their manifest.csv under `out`.

    Args:
        out: target folder (e.g. the repository's sample_cases/).
        size: film size in pixels.

    Returns:
        The case folders written, in slot order.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = SynthConfig(image_size=size)
    indices = sample_indices()
    folders, rows = [], []
    for slot in SLOTS:
        case = generate_case(indices[slot.name], SAMPLE_SEED, cfg)
        style = dataclasses.replace(case.style, photometric=slot.photometric, transfer_syntax=slot.transfer_syntax)
        case = dataclasses.replace(
            case,
            case_id=slot.name,
            style=style,
            film=None if slot.drop == "image" else case.film,
            report=None if slot.drop == "report" else case.report,
            vitals=None if slot.drop == "vitals" else case.vitals,
        )
        folders.append(write_case(case, out))
        rows.append(manifest_row(case, size))
    write_manifest(out / "manifest.csv", rows)
    (out / "README.md").write_text(samples_readme(rows), encoding="utf-8")
    return folders


def samples_readme(rows: list[dict[str, str]]) -> str:
    """README.md of the sample folder: one table row per case."""
    shows = {slot.name: slot.shows for slot in SLOTS}
    lines = [
        "# Sample cases",
        "",
        "Synthetic chest cases (invented patients, not real data) for trying the app: pick one in the",
        "\"load sample case\" list. Regenerate them exactly with `moe-app synth --samples sample_cases/`.",
        "Each folder follows the intake contract: `image.dcm`, `report.txt`, `vitals.json` (any may be absent).",
        "`manifest.csv` holds the ground truth (label, pneumothorax side and location, encoding).",
        "",
        "| case | diagnosis | image | report | vitals | DICOM encoding | what it shows |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    yes = {"1": "yes", "0": "-"}
    for r in rows:
        encoding = f"{r['photometric']}, {r['transfer_syntax']}" if r["has_image"] == "1" else "-"
        label = r["label"] + (f" (resembles {r['mimic']})" if r["mimic"] else "")
        lines.append(
            f"| {r['case_id']} | {label} | {yes[r['has_image']]} | {yes[r['has_report']]} | "
            f"{yes[r['has_vitals']]} | {encoding} | {shows[r['case_id']]} |"
        )
    return "\n".join(lines) + "\n"
