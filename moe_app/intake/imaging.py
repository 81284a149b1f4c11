"""Pure pixel functions: modality LUT, VOI windowing, inversion, colour, presets, display.

Small typed functions on numpy arrays in the spirit of MONAI transforms, with degenerate
input (zero window width, constant image, non-finite values) handled explicitly. The
formulas follow DICOM PS3.3 C.11.1 (Modality LUT) and C.11.2.1.2 (Window Center/Width).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from moe_app.intake.case import WindowPreset

WINDOW_FUNCTIONS: tuple[str, ...] = ("LINEAR", "LINEAR_EXACT", "SIGMOID")

# Chest presets in Hounsfield units (centre, width), for CT-like images.
_HU_PRESETS: tuple[tuple[str, float, float], ...] = (
    ("lung", -600.0, 1500.0),
    ("mediastinum", 40.0, 400.0),
    ("bone", 480.0, 2500.0),
)
# Presets for projection images without HU, as density percentiles (low, high):
# low density (air, lungs) first. See `frame_presets`.
_DENSITY_PRESETS: tuple[tuple[str, float, float], ...] = (
    ("lung", 1.0, 70.0),
    ("mediastinum", 30.0, 97.0),
    ("bone", 60.0, 99.8),
)
_MAX_SAMPLES = 512 * 512  # pixels used to estimate percentiles (strided subsample)


def apply_modality_lut(
    pixels: np.ndarray, slope: float = 1.0, intercept: float = 0.0
) -> np.ndarray:
    """Stored values -> modality units (e.g. HU): ``pixels * slope + intercept`` as float32."""
    out = pixels.astype(np.float32, copy=True)
    if slope != 1.0:
        out *= np.float32(slope)
    if intercept != 0.0:
        out += np.float32(intercept)
    return out


def apply_window(
    pixels: np.ndarray, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    """Map modality values to [0, 1] with a DICOM VOI window.

    Args:
        pixels: Values in modality units, any shape.
        center: Window centre.
        width: Window width. A width the function cannot use (LINEAR: < 1, others: <= 0)
            is treated as its limit: a threshold at the centre (0 below, 1 above).
        function: "LINEAR", "LINEAR_EXACT" or "SIGMOID" (VOI LUT Function).

    Returns:
        float32 array of the same shape, values in [0, 1].
    """
    function = function.upper() if function else "LINEAR"
    if function not in WINDOW_FUNCTIONS:
        raise ValueError(f"unknown VOI LUT function {function!r}; use one of {WINDOW_FUNCTIONS}")
    if function == "LINEAR" and width <= 1.0:
        return (pixels > center - 0.5).astype(np.float32)
    if width <= 0.0:
        return (pixels > center).astype(np.float32)
    # float32, in place: a 2048 x 2048 film is windowed in a few milliseconds
    y = pixels.astype(np.float32, copy=True)
    if function == "LINEAR":
        y -= np.float32(center - 0.5)
        y *= np.float32(1.0 / (width - 1.0))
        y += np.float32(0.5)
    elif function == "LINEAR_EXACT":
        y -= np.float32(center)
        y *= np.float32(1.0 / width)
        y += np.float32(0.5)
    else:  # SIGMOID: 1 / (1 + exp(-4 (x - c) / w)), written with tanh so it cannot overflow
        y -= np.float32(center)
        y *= np.float32(2.0 / width)
        np.tanh(y, out=y)
        y += np.float32(1.0)
        y *= np.float32(0.5)
    return np.clip(y, 0.0, 1.0, out=y)


def apply_lut_table(pixels: np.ndarray, table: np.ndarray, first_mapped: int) -> np.ndarray:
    """Apply a VOI LUT table (DICOM LUT Descriptor semantics) and scale its output to [0, 1].

    Values below `first_mapped` take the first entry, values past the end the last entry.
    A table whose entries are all equal maps everything to 0.5.
    """
    table = np.asarray(table, dtype=np.float64).ravel()
    if table.size == 0:
        raise ValueError("empty VOI LUT table")
    index = np.clip(np.rint(pixels.astype(np.float64)) - first_mapped, 0, table.size - 1)
    lo, hi = float(table.min()), float(table.max())
    if hi <= lo:
        return np.full(pixels.shape, 0.5, dtype=np.float32)
    return ((table[index.astype(np.int64)] - lo) / (hi - lo)).astype(np.float32)


def invert(unit: np.ndarray) -> np.ndarray:
    """Invert a [0, 1] image (MONOCHROME1: high values are dark)."""
    return (1.0 - unit).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB of any numeric type, scaled 0..255 -> (H, W) float32 in [0, 1] (BT.601)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    y = rgb[..., :3].astype(np.float32) @ weights  # (H, W)
    return np.clip(y / 255.0, 0.0, 1.0).astype(np.float32)


def to_uint8_rgb(rgb: np.ndarray, bits: int) -> np.ndarray:
    """Scale an (H, W, 3) colour frame of `bits` significant bits to uint8."""
    if rgb.dtype == np.uint8 and bits <= 8:
        return rgb
    top = float(2 ** max(1, min(bits, 32)) - 1)
    return np.clip(rgb.astype(np.float64) * (255.0 / top), 0, 255).round().astype(np.uint8)


def sanitize(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Replace NaN/inf (possible in float pixel data) by the lowest finite value.

    Returns the cleaned array and whether anything was replaced. An image without any
    finite value becomes all zeros.
    """
    finite = np.isfinite(values)
    if finite.all():
        return values, False
    fill = float(values[finite].min()) if finite.any() else 0.0
    return np.where(finite, values, fill).astype(values.dtype), True


def _subsample(pixels: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil(np.sqrt(pixels.size / _MAX_SAMPLES))))
    return pixels[::step, ::step] if pixels.ndim >= 2 else pixels[::step]


def percentile_window(
    pixels: np.ndarray, low: float = 1.0, high: float = 99.0
) -> tuple[float, float]:
    """(centre, width) of a LINEAR_EXACT window spanning two intensity percentiles.

    A constant image gives width 0 (see `frame_presets` for how that is displayed).
    """
    sample = _subsample(pixels)
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    return (lo + hi) / 2.0, hi - lo


def _percentile_preset(name: str, pixels: np.ndarray, low: float, high: float) -> WindowPreset:
    center, width = percentile_window(pixels, low, high)
    if width <= 0.0:  # constant (or nearly constant) image: show it mid-grey, not black
        return WindowPreset(name, center, 1.0, "LINEAR_EXACT")
    return WindowPreset(name, center, width, "LINEAR_EXACT")


def dicom_windows(
    centers: Sequence[float], widths: Sequence[float], explanations: Sequence[str], function: str
) -> tuple[WindowPreset, ...]:
    """Presets from the DICOM Window Center/Width values (several windows allowed)."""
    function = function.upper() if function and function.upper() in WINDOW_FUNCTIONS else "LINEAR"
    presets = []
    for i, (center, width) in enumerate(zip(centers, widths, strict=False)):
        label = explanations[i].strip() if i < len(explanations) and explanations[i] else ""
        name = "default" if i == 0 else f"DICOM window {i + 1}"
        presets.append(
            WindowPreset(f"{name} ({label})" if label else name, center, width, function)
        )
    return tuple(presets)


def frame_presets(
    pixels: np.ndarray,
    dicom: Sequence[WindowPreset] = (),
    *,
    hounsfield: bool = False,
    monochrome1: bool = False,
) -> tuple[WindowPreset, ...]:
    """Window presets for one frame; the first is the default.

    Args:
        pixels: The frame in modality units.
        dicom: Windows stored in the DICOM header (see `dicom_windows`); the first one
            becomes the default. Without any, the default spans the 1st-99th percentile.
        hounsfield: True when values are CT numbers (HU): the chest presets use fixed HU
            windows. Otherwise lung/mediastinum/bone are estimated from intensity
            percentiles, and their names say so.
        monochrome1: True when high stored values are dark, so low density is at the top
            of the value range and the density percentiles are mirrored.

    Returns:
        Presets in order: default, any further DICOM windows, lung, mediastinum, bone.
    """
    presets = list(dicom) or [_percentile_preset("default (from intensities)", pixels, 1.0, 99.0)]
    if hounsfield:
        presets += [WindowPreset(name, c, w) for name, c, w in _HU_PRESETS]
        return tuple(presets)
    for name, low, high in _DENSITY_PRESETS:
        if monochrome1:
            low, high = 100.0 - high, 100.0 - low
        presets.append(
            _percentile_preset(f"{name} (estimated from intensities)", pixels, low, high)
        )
    return tuple(presets)


def window_frame(frame: np.ndarray, preset: WindowPreset, *, invert_mono1: bool) -> np.ndarray:
    """A grey frame in modality units -> float32 [0, 1], bright = dense."""
    unit = apply_window(frame, preset.center, preset.width, preset.function)
    return invert(unit) if invert_mono1 else unit


def to_display(frame: np.ndarray, preset: WindowPreset, *, invert: bool = False) -> np.ndarray:
    """A frame -> uint8 image for the screen.

    Grey frames (H, W) are windowed with `preset` (and inverted for MONOCHROME1);
    colour frames (H, W, 3) are already display values and are returned as uint8 as is.
    """
    if frame.ndim == 3:
        return to_uint8_rgb(frame, 8)
    unit = window_frame(frame, preset, invert_mono1=invert)
    return np.rint(unit * 255.0).astype(np.uint8)
