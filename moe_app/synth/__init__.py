"""Synthetic multimodal chest cases written as intake case folders (DICOM film, report, vitals).

Public API (imported lazily so `moe-app` starts fast):

- `generate_case(index, seed, cfg=SynthConfig()) -> SynthCase`: one case, deterministic in (seed, index).
- `write_case(case, out_dir) -> Path`: out_dir/<case_id>/image.dcm, report.txt, vitals.json.
- `generate_dataset(out, n, seed, cfg=SynthConfig(), workers=2, progress=True) -> Path`:
  a whole set plus manifest.csv (ground truth); returns the manifest path.
- `read_manifest(path) -> list[dict[str, str]]`, `split_of(case_id) -> "train" | "val" | "test"`.
- `build_samples(out) -> list[Path]`: the curated sample_cases/.
- `run_check(load_rows(data_dir)) -> CheckResult`: the per-modality baselines of `synth --check`.

Pipeline per case: findings.py (what the film shows, per diagnosis) -> render.py (anatomy.py,
markings.py: the film) -> dicom.py; report.py (the radiologist's read of the same findings
plus a history line); vitals.py (correlated vitals/labs); identity.py (invented PHI).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SynthCase": "moe_app.synth.generate",
    "SynthConfig": "moe_app.synth.generate",
    "generate_case": "moe_app.synth.generate",
    "write_case": "moe_app.synth.generate",
    "split_of": "moe_app.synth.generate",
    "generate_dataset": "moe_app.synth.dataset",
    "read_manifest": "moe_app.synth.dataset",
    "MANIFEST_FIELDS": "moe_app.synth.dataset",
    "build_samples": "moe_app.synth.samples",
    "CheckResult": "moe_app.synth.check",
    "load_rows": "moe_app.synth.check",
    "run_check": "moe_app.synth.check",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'moe_app.synth' has no attribute {name!r}")
