"""Case intake: case folders, uploads, DICOM, report and vitals -> a de-identified Case.

Public entry points: `load_case_folder` and `load_upload` (everything a user hands in),
`parse_vitals` / `read_vitals_file`, `read_report`. Every failure is a `CaseError`.
Pixel functions (windowing, presets, display) live in `moe_app.intake.imaging`.
"""

from __future__ import annotations

from moe_app.intake.case import Case, ImageStudy, WindowPreset
from moe_app.intake.loader import load_case_folder, load_upload
from moe_app.intake.report import read_report
from moe_app.intake.vitals import parse_vitals, read_vitals_file

__all__ = [
    "Case",
    "ImageStudy",
    "WindowPreset",
    "load_case_folder",
    "load_upload",
    "parse_vitals",
    "read_report",
    "read_vitals_file",
]
