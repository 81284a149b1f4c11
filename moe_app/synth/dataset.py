"""A whole synthetic set: case folders written in parallel plus manifest.csv with ground truth."""

from __future__ import annotations

import csv
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from moe_app.synth.generate import SynthCase, SynthConfig, generate_case, write_case

MANIFEST_FILE = "manifest.csv"
MANIFEST_FIELDS: tuple[str, ...] = (
    "case_id", "label", "has_image", "has_report", "has_vitals", "split", "ambiguous", "mimic", "subtle",
    "modality", "view", "photometric", "transfer_syntax", "image_size",
    "ctr", "consolidation_sides", "effusion_right", "effusion_left",
    "ptx_side", "ptx_depth", "ptx_x0", "ptx_y0", "ptx_x1", "ptx_y1", "pleural_line_x",
)


def manifest_row(case: SynthCase, image_size: int) -> dict[str, str]:
    """Ground truth of one case for manifest.csv.

    Sides are patient sides; ptx_* and pleural_line_x are image fractions (x to the right,
    y down) of the air rim's bounding box and of the pleural line; on these PA/AP films the
    patient's right is on the image left.
    """
    f, film = case.findings, case.film
    bbox = film.ptx_bbox if film is not None and film.ptx_bbox is not None else None
    return {
        "case_id": case.case_id,
        "label": case.label,
        "has_image": str(int(film is not None)),
        "has_report": str(int(case.report is not None)),
        "has_vitals": str(int(case.vitals is not None)),
        "split": case.split,
        "ambiguous": str(int(case.ambiguous)),
        "mimic": case.mimic or "",
        "subtle": str(int(case.subtle)),
        "modality": case.style.modality if film is not None else "",
        "view": case.style.view if film is not None else "",
        "photometric": case.style.photometric if film is not None else "",
        "transfer_syntax": case.style.transfer_syntax.name if film is not None else "",
        "image_size": str(image_size) if film is not None else "",
        "ctr": f"{film.ctr:.3f}" if film is not None else "",
        "consolidation_sides": ";".join(sorted({c.side for c in f.consolidations})),
        "effusion_right": f"{f.effusion_right:.3f}",
        "effusion_left": f"{f.effusion_left:.3f}",
        "ptx_side": f.ptx_side or "",
        "ptx_depth": f"{f.ptx_depth:.3f}" if f.ptx_side else "",
        "ptx_x0": f"{bbox[0]:.4f}" if bbox else "",
        "ptx_y0": f"{bbox[1]:.4f}" if bbox else "",
        "ptx_x1": f"{bbox[2]:.4f}" if bbox else "",
        "ptx_y1": f"{bbox[3]:.4f}" if bbox else "",
        "pleural_line_x": f"{film.pleural_line_x:.4f}" if film is not None and film.pleural_line_x is not None else "",
    }


def _make_one(index: int, seed: int, cfg: SynthConfig, out: Path) -> dict[str, str]:
    case = generate_case(index, seed, cfg)
    write_case(case, out)
    return manifest_row(case, cfg.image_size)


def generate_dataset(
    out: Path, n: int, seed: int, cfg: SynthConfig = SynthConfig(), workers: int = 2, progress: bool = True
) -> Path:
    """Write cases 0..n-1 of the set `seed` under `out` and its manifest.

    Args:
        out: output folder (created; existing case folders are overwritten).
        n: number of cases.
        seed: set seed; the same (seed, n, cfg) gives the same files whatever `workers`.
        cfg: generator configuration.
        workers: worker processes (1 = in this process).
        progress: show a progress bar.

    Returns:
        Path of manifest.csv.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    job = partial(_make_one, seed=seed, cfg=cfg, out=out)
    bar = tqdm(total=n, desc="synth", unit="case", disable=not progress)
    rows: list[dict[str, str]] = []
    if workers <= 1:
        for i in range(n):
            rows.append(job(i))
            bar.update()
    else:
        with get_context("fork").Pool(workers) as pool:
            for row in pool.imap(job, range(n), chunksize=8):
                rows.append(row)
                bar.update()
    bar.close()
    return write_manifest(out / "manifest.csv", rows)


def write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write manifest rows (in case order) as CSV."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(MANIFEST_FIELDS))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Read manifest.csv rows."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
