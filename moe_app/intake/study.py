"""Decode the picked series into an `ImageStudy`: frames, model input, presets, header."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from pydicom.dataset import Dataset

from moe_app.config import IntakeLimits
from moe_app.deid import deidentify
from moe_app.errors import CaseError, DeidError
from moe_app.intake import imaging, pixels
from moe_app.intake.case import ImageStudy, WindowPreset
from moe_app.intake.dicom import (
    PIXEL_KEYWORDS,
    check_image,
    iter_frames,
    parse,
    transfer_syntax_name,
)
from moe_app.intake.series import Instance

_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"})
_MAX_HEADER_VALUE = 200


def kept_frames(
    members: Sequence[Instance], picked: int, budget_bytes: int
) -> tuple[set[int], int]:
    """Which frames (over the whole series) to keep in memory, and how many there are.

    All of them when they fit in `budget_bytes` as float32; otherwise evenly spaced ones,
    always including the picked frame.
    """
    total = sum(m.n_frames for m in members)
    per_frame = max(m.rows * m.columns * (3 if m.colour else 4) for m in members)
    fit = max(1, budget_bytes // max(per_frame, 1))
    if total <= fit:
        return set(range(total)), total
    keep = {int(i) for i in np.linspace(0, total - 1, num=max(1, fit - 1))}
    return keep | {picked}, total


def header_dict(ds: Dataset) -> dict[str, str]:
    """De-identified header as keyword -> short printable value (no pixel or binary data)."""
    out: dict[str, str] = {}
    for elem in ds:
        if not elem.keyword or elem.VR in _BINARY_VRS or elem.keyword in PIXEL_KEYWORDS:
            continue
        text = str(elem.value)
        out[elem.keyword] = (
            text if len(text) <= _MAX_HEADER_VALUE else text[:_MAX_HEADER_VALUE] + "…"
        )
    return out


def _model_input(
    frame: np.ndarray, ds: Dataset, preset: WindowPreset, invert: bool, index: int
) -> np.ndarray:
    if frame.ndim == 3:
        return imaging.luminance(frame)
    table = pixels.voi_lut_table(ds) if not pixels.dicom_windows(ds, index) else None
    if table is not None:
        unit = imaging.apply_lut_table(frame, *table)
        return imaging.invert(unit) if invert else unit
    return imaging.window_frame(frame, preset, invert_mono1=invert)


def _case_frames(ds: Dataset, label: str, wanted: list[int]) -> Iterator[np.ndarray]:
    """Decode the wanted frames of one file, one at a time, into Case frames."""
    for (raw, photometric), index in zip(iter_frames(ds, label, wanted), wanted, strict=True):
        try:
            yield pixels.to_case_frame(raw, photometric, ds, index)
        except (Exception, MemoryError) as exc:  # damaged LUTs, odd layouts
            raise CaseError(
                f"{label.capitalize()}: frame {index + 1} cannot be converted to an image "
                f"({type(exc).__name__}); its colour or intensity tables may be damaged."
            ) from None


def build_study(
    members: Sequence[Instance],
    picked: int,
    description: str,
    n_series: int,
    *,
    key: bytes,
    limits: IntakeLimits,
) -> tuple[ImageStudy, list[str]]:
    """Decode one ordered series frame by frame and build the ImageStudy.

    Returns:
        The study and warnings for the user (burned-in annotation, thinned frames, ...).

    Raises:
        CaseError: Any file of the series cannot be read, decoded or de-identified.
    """
    keep, total = kept_frames(members, picked, limits.max_total_bytes)
    warnings: list[str] = []
    if len(keep) < total:
        warnings.append(
            f"The series has {total} frames; {len(keep)} evenly spaced ones are kept for viewing."
        )
    frames: list[np.ndarray] = []
    picked_position, start = 0, 0
    study_ds: Dataset | None = None
    photometric_out, model_input, windows = "", None, ()
    for member in members:
        ds = parse(member.source.read(), member.source.label)
        check_image(ds, member.source.label, limits)
        wanted = [i - start for i in range(start, start + member.n_frames) if i in keep]
        for index, frame in zip(wanted, _case_frames(ds, member.source.label, wanted), strict=True):
            if start + index == picked:
                picked_position, study_ds = len(frames), ds
                photometric_out = str(ds.get("PhotometricInterpretation", "") or "").upper()
                invert = photometric_out == "MONOCHROME1" and frame.ndim == 2
                windows = pixels.window_presets(ds, frame, index)
                model_input = _model_input(frame, ds, windows[0], invert, index)
            frames.append(frame)
        start += member.n_frames
    if study_ds is None or model_input is None:
        raise CaseError(
            "The picked image frame could not be found in the series; the files may be damaged."
        )
    if not np.isfinite(model_input).all():
        raise CaseError("The image could not be turned into valid model input (non-finite values).")
    for keyword in PIXEL_KEYWORDS:
        if keyword in study_ds:
            delattr(study_ds, keyword)
    try:
        clean, deid_warnings = deidentify(study_ds, key=key)
    except DeidError as exc:
        raise CaseError(str(exc)) from None
    study = ImageStudy(
        frames=tuple(frames),
        model_input=np.ascontiguousarray(model_input, dtype=np.float32),
        windows=windows,
        photometric=photometric_out,
        series_description=description,
        header=header_dict(clean),
        transfer_syntax=transfer_syntax_name(study_ds),
        n_series=n_series,
        picked_index=picked_position,
    )
    return study, warnings + deid_warnings
