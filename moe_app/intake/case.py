"""The Case: what intake hands to every later stage (already de-identified)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class WindowPreset:
    name: str  # "default", "lung", "mediastinum", "bone"
    center: float  # in modality (rescaled) units
    width: float
    function: str = "LINEAR"  # DICOM VOI LUT Function: "LINEAR", "LINEAR_EXACT" or "SIGMOID"


@dataclass(frozen=True)
class ImageStudy:
    """The one series intake picked for the model, decoded and de-identified.

    `frames` holds modality-LUT-applied values (rescaled units, float32), one 2-D array per
    frame/slice in display order. `model_input` is the picked frame windowed with the
    default window to [0, 1], MONOCHROME1 already inverted (bright = dense, as on a film).
    """

    frames: tuple[np.ndarray, ...]  # each (H, W) float32, or (H, W, 3) uint8 for colour
    model_input: np.ndarray  # (H, W) float32 in [0, 1]
    windows: tuple[WindowPreset, ...]  # first one is the DICOM's own default
    photometric: str  # as read, e.g. "MONOCHROME1"
    series_description: str  # which series was picked and why, in plain words
    header: dict[str, str]  # de-identified header, keyword -> printable value
    transfer_syntax: str  # name, e.g. "JPEG 2000 Image Compression (Lossless Only)"
    n_series: int  # how many series the upload held
    picked_index: int = 0  # index into `frames` of the frame behind `model_input`

    def display(self, preset: WindowPreset | None = None, index: int | None = None) -> np.ndarray:
        """One frame as a uint8 display image (default: picked frame, default window)."""
        from moe_app.intake.imaging import to_display

        frame = self.frames[self.picked_index if index is None else index]
        window = self.windows[0] if preset is None else preset
        return to_display(frame, window, invert=self.photometric == "MONOCHROME1")


@dataclass(frozen=True)
class Case:
    """One de-identified case. Any of image, report, vitals may be None (absent)."""

    case_id: str  # folder or upload name (never a patient identifier)
    pseudonym: str  # keyed HMAC of patient + study identifiers, stable per patient/study
    image: ImageStudy | None = None
    report: str | None = None  # scrubbed free text
    vitals: dict[str, float] | None = None  # VITAL_KEYS subset; absent key = not measured
    sex: str | None = None  # "F" / "M" / None
    warnings: tuple[str, ...] = ()  # things a clinician should know (burned-in text, etc.)
    input_hashes: dict[str, str] = field(default_factory=dict)  # sha256 per input, for audit

    @property
    def modalities(self) -> dict[str, bool]:
        return {
            "image": self.image is not None,
            "report": bool(self.report and self.report.strip()),
            "vitals": bool(self.vitals),  # at least one measured value; sex alone is not vitals
        }

    def summary(self) -> dict[str, Any]:
        """A PHI-free description for logs and the audit payload."""
        return {"case_id": self.case_id, "pseudonym": self.pseudonym, "modalities": self.modalities}
