"""From a decoded DICOM frame to what the Case holds, reading the parameters from the header.

The header lookups (rescale, windows, VOI LUT) honour enhanced multi-frame functional
groups (per-frame first, then shared, then the top level), and all tolerate damaged
values by falling back to "not stated".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, convert_color_space
from pydicom.pixels.processing import apply_modality_lut as pydicom_modality_lut

from moe_app.intake import imaging
from moe_app.intake.case import WindowPreset


def _floats(value: Any) -> list[float]:
    """A DS/IS/float value or a multi-value -> finite floats (damaged values dropped)."""
    if value is None or value == "":
        return []
    scalar = isinstance(value, str | bytes) or not hasattr(value, "__iter__")
    items: Iterable[Any] = [value] if scalar else value
    out = []
    for item in items:
        try:
            number = float(item)
        except (TypeError, ValueError, OverflowError):
            continue
        if math.isfinite(number):
            out.append(number)
    return out


def _group_item(ds: Dataset, index: int, sequence: str) -> Dataset | None:
    """Item of a functional-group macro for frame `index` (per-frame, else shared)."""
    for group_seq, position in (
        ("PerFrameFunctionalGroupsSequence", index),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        try:
            groups = ds.get(group_seq)
            if groups and position < len(groups):
                macro = groups[position].get(sequence)
                if macro:
                    return macro[0]
        except (Exception, MemoryError):  # damaged sequences: ignore, use the top level
            continue
    return None


def rescale(ds: Dataset, index: int = 0) -> tuple[float, float]:
    """(slope, intercept) of the Modality LUT for one frame; (1, 0) when not stated."""
    source = _group_item(ds, index, "PixelValueTransformationSequence") or ds
    slope = _floats(source.get("RescaleSlope"))
    intercept = _floats(source.get("RescaleIntercept"))
    s = slope[0] if slope and slope[0] != 0.0 else 1.0
    return s, intercept[0] if intercept else 0.0


def modality_values(frame: np.ndarray, ds: Dataset, index: int = 0) -> np.ndarray:
    """Stored values of a grey frame -> float32 modality units (Rescale or Modality LUT)."""
    if "ModalityLUTSequence" in ds:
        try:
            return np.asarray(pydicom_modality_lut(frame, ds), dtype=np.float32)
        except (Exception, MemoryError):
            pass  # a damaged LUT: fall back to the rescale values
    slope, intercept = rescale(ds, index)
    return imaging.apply_modality_lut(frame, slope, intercept)


def dicom_windows(ds: Dataset, index: int = 0) -> tuple[WindowPreset, ...]:
    """The Window Center/Width presets the header stores for one frame (may be empty)."""
    source = _group_item(ds, index, "FrameVOILUTSequence") or ds
    centers = _floats(source.get("WindowCenter"))
    widths = _floats(source.get("WindowWidth"))
    raw = source.get("WindowCenterWidthExplanation") or []
    explanations = [str(raw)] if isinstance(raw, str) else [str(x) for x in raw]
    function = str(source.get("VOILUTFunction") or "LINEAR")
    return imaging.dicom_windows(centers, widths, explanations, function)


def voi_lut_table(ds: Dataset) -> tuple[np.ndarray, int] | None:
    """(table, first mapped value) of the first VOI LUT Sequence item, or None."""
    try:
        item = ds.VOILUTSequence[0]
        n, first, bits = (int(v) for v in item.LUTDescriptor)
        data = item.LUTData
        if isinstance(data, bytes | bytearray):
            table = np.frombuffer(data, dtype="<u2" if bits > 8 else np.uint8)
        else:
            table = np.asarray(data if isinstance(data, list) else [data], dtype=np.float64)
        n = n or 65536
        if int(ds.get("PixelRepresentation", 0) or 0) == 1 and first > 32767:
            first -= 65536  # stored as US, meant as a signed first value
        table = table[:n]
        return (table, first) if table.size else None
    except (Exception, MemoryError):
        return None


def to_case_frame(frame: np.ndarray, photometric: str, ds: Dataset, index: int) -> np.ndarray:
    """A decoded frame -> (H, W) float32 modality values, or (H, W, 3) uint8 RGB.

    `photometric` is the interpretation after pydicom's decoding (YBR_FULL(_422) is
    usually already RGB); PALETTE COLOR goes through its colour LUT.
    """
    if frame.ndim == 2:
        if photometric == "PALETTE COLOR":
            rgb = apply_color_lut(frame, ds)
            return imaging.to_uint8_rgb(rgb, 8 if rgb.dtype.itemsize == 1 else 16)
        values, _ = imaging.sanitize(modality_values(frame, ds, index))
        return values
    if photometric in ("YBR_FULL", "YBR_FULL_422") and frame.dtype == np.uint8:
        frame = convert_color_space(frame, photometric, "RGB")
    bits = int(ds.get("BitsStored", 8) or 8)
    if frame.dtype.kind == "f":
        frame = np.clip(np.nan_to_num(frame), 0, None)
        bits = max(1, math.ceil(math.log2(float(frame.max()) + 1.0)))
    return imaging.to_uint8_rgb(frame[..., :3], bits)


def window_presets(ds: Dataset, frame: np.ndarray, index: int = 0) -> tuple[WindowPreset, ...]:
    """Window presets for one frame of `ds`; the first is the default.

    Args:
        ds: The dataset the frame comes from (windows, VOI LUT, modality, photometric).
        frame: The frame as returned by `to_case_frame` (modality units, or RGB).
        index: Frame number, for per-frame windows of enhanced multi-frame images.

    Returns:
        The DICOM's own window(s) first (the first of several is the default; a VOI LUT
        is shown as its nearest linear window), else a 1st-99th percentile default; then
        lung, mediastinum and bone: fixed HU windows for CT numbers, else estimated from
        intensity percentiles (and named so). A colour frame gets one pass-through preset.
    """
    if frame.ndim == 3:
        return (WindowPreset("default (colour image)", 127.5, 256.0, "LINEAR_EXACT"),)
    dicom = dicom_windows(ds, index)
    table = None if dicom else voi_lut_table(ds)
    if table is not None:
        lut, first = table
        center, width = first + lut.size / 2.0, float(lut.size)
        dicom = (WindowPreset("default (VOI LUT, shown linear)", center, width, "LINEAR_EXACT"),)
    modality = str(ds.get("Modality", "") or "").upper()
    rescale_type = str(ds.get("RescaleType", "") or "").upper()
    air_in_hu = float(frame.min()) < -200.0  # raw CT values without rescale are not HU
    hounsfield = (modality == "CT" or rescale_type == "HU") and air_in_hu
    photometric = str(ds.get("PhotometricInterpretation", "") or "").upper()
    return imaging.frame_presets(
        frame, dicom, hounsfield=hounsfield, monochrome1=photometric == "MONOCHROME1"
    )
