"""Case intake: case folders, uploads, DICOM, report and vitals -> a de-identified Case."""

from __future__ import annotations

from moe_app.intake.case import Case, ImageStudy, WindowPreset

__all__ = ["Case", "ImageStudy", "WindowPreset"]
