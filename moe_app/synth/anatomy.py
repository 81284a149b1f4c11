"""A chest-radiograph phantom: analytic anatomy drawn as a density map, vectorised in numpy.

Coordinates are normalised to [0, 1] (x to the image right, y down). The film is displayed
as usual for PA/AP views: the patient's right is on the image left. Every shape is a smooth
field evaluated on a (possibly rotated, shifted, scaled) coordinate grid, so position jitter
costs nothing and no large gaussian filters are needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

FloatArray = np.ndarray


HEART_WIDTH_FACTOR = 1.15  # silhouette width relative to the border extents


@dataclass(frozen=True)
class Anatomy:
    """Patient geometry of one film, in normalised coordinates (before jitter)."""

    spine_x: float  # midline
    lung_top: float  # apex height
    dome_right: float  # y of the patient's right hemidiaphragm apex (image left)
    dome_left: float  # y of the patient's left hemidiaphragm apex (image right)
    chest_half_width: float  # lateral extent of each lung from the midline
    heart_right: float  # extent of the right heart border from the midline (image left)
    heart_left: float  # extent of the left heart border from the midline (image right)
    heart_top: float  # y of the top of the cardiac silhouette
    female: bool  # draws breast shadows
    breast_size: float  # 0 when not drawn
    rotation_deg: float  # film rotation jitter
    shift: tuple[float, float]  # film position jitter (dx, dy)
    scale: float  # patient size relative to the detector


@dataclass(frozen=True)
class Grid:
    """Coordinate grid of one film after jitter; `x`, `y` are (H, W) float32."""

    x: FloatArray
    y: FloatArray


def sample_anatomy(rng: np.random.Generator, female: bool) -> Anatomy:
    """Draw a plausible adult chest geometry."""
    half = rng.uniform(0.33, 0.39)
    return Anatomy(
        spine_x=0.5 + rng.normal(0, 0.006),
        lung_top=rng.uniform(0.13, 0.18),
        dome_right=rng.uniform(0.70, 0.76),
        dome_left=rng.uniform(0.73, 0.79),
        chest_half_width=half,
        heart_right=rng.uniform(0.085, 0.105),
        heart_left=rng.uniform(0.185, 0.215),
        heart_top=rng.uniform(0.5, 0.55),
        female=female,
        breast_size=float(rng.uniform(0.5, 1.0)) if female and rng.random() < 0.8 else 0.0,
        rotation_deg=float(rng.normal(0, 1.5)),
        shift=(float(rng.normal(0, 0.012)), float(rng.normal(0, 0.012))),
        scale=float(rng.uniform(0.94, 1.05)),
    )


def make_grid(size: int, anatomy: Anatomy) -> Grid:
    """Return the jittered coordinate grid (rotation about the centre, shift, scale)."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(t, t, indexing="ij")  # (H, W) each
    a = np.deg2rad(anatomy.rotation_deg)
    dx, dy = anatomy.shift
    xc, yc = (xx - 0.5 - dx) / anatomy.scale, (yy - 0.5 - dy) / anatomy.scale
    x = np.cos(a) * xc - np.sin(a) * yc + 0.5
    y = np.sin(a) * xc + np.cos(a) * yc + 0.5
    return Grid(x=x.astype(np.float32), y=y.astype(np.float32))


def soft(d: FloatArray, width: float) -> FloatArray:
    """Smooth step from 0 (d << 0) to 1 (d >> 0) over about `width`."""
    return 0.5 * (1.0 + np.tanh(d / width))


def dome_y(anatomy: Anatomy, x: FloatArray) -> FloatArray:
    """Height of the diaphragm at each x: two domes meeting near the midline."""
    left_side = x > anatomy.spine_x  # image right = patient's left
    top = np.where(left_side, anatomy.dome_left, anatomy.dome_right)
    centre = np.where(left_side, anatomy.spine_x + 0.17, anatomy.spine_x - 0.17)
    return top + 1.6 * (x - centre) ** 2


def lung_masks(anatomy: Anatomy, g: Grid) -> tuple[FloatArray, FloatArray]:
    """Soft masks of the right and left lung fields (patient sides), without the heart cut-out.

    Each lung is bounded by a rounded apex, a lateral border that widens towards the base,
    the midline structures and the diaphragm, which meets the lateral border at a sharp
    costophrenic angle. Values inside grow towards the centre (more air to traverse).
    """
    a, x, y = anatomy, g.x, g.y
    u = np.abs(x - a.spine_x)
    masks = []
    for sign, dome_top in ((-1.0, a.dome_right), (1.0, a.dome_left)):
        t = np.clip((y - a.lung_top) / (dome_top + 0.06 - a.lung_top), 0.0, 1.0)
        half = a.chest_half_width * (0.5 + 0.5 * np.sin(0.5 * np.pi * np.minimum(t * 1.7, 1.0)))
        lateral = half - u
        apex = y - (a.lung_top + 2.2 * (u - a.chest_half_width * 0.45) ** 2)
        medial = u - 0.035
        below = dome_y(a, x) - y
        side = soft(sign * (x - a.spine_x), 0.004)
        depth = np.minimum(np.minimum(lateral, apex), below)  # rough distance to the border
        thickness = np.sqrt(np.clip(depth / 0.06, 0.0, 1.0)) * 0.35 + 0.65
        masks.append(
            soft(lateral, 0.006) * soft(apex, 0.01) * soft(medial, 0.006) * soft(below, 0.004) * side * thickness
        )
    return masks[0], masks[1]


def heart_mask(anatomy: Anatomy, g: Grid) -> FloatArray:
    """Cardiac silhouette (tilted ellipse resting on the diaphragm) plus the upper mediastinum."""
    a, x, y = anatomy, g.x, g.y
    rx = (a.heart_left + a.heart_right) / 2.0 * HEART_WIDTH_FACTOR
    hx = a.spine_x + (a.heart_left - a.heart_right) / 2.0
    dome = (a.dome_right + a.dome_left) / 2.0
    ry = (dome + 0.1 - a.heart_top) / 2.0
    hy = a.heart_top + ry
    ang = np.deg2rad(-18.0)  # apex points down and to the patient's left
    xr = np.cos(ang) * (x - hx) - np.sin(ang) * (y - hy)
    yr = np.sin(ang) * (x - hx) + np.cos(ang) * (y - hy)
    ell = 1.0 - (xr / rx) ** 2 - (yr / ry) ** 2
    heart = (0.6 + 0.4 * np.sqrt(np.clip(ell, 0.0, 1.0))) * soft(ell, 0.04)
    width = 0.05 + 0.025 * np.clip((y - 0.2) / 0.3, 0.0, 1.0)
    band = soft(width - np.abs(x - a.spine_x - 0.005), 0.012) * soft(y - 0.02, 0.02) * soft(dome - y, 0.01)
    knob = soft(1.0 - ((x - a.spine_x - 0.055) / 0.04) ** 2 - ((y - 0.33) / 0.035) ** 2, 0.1)
    return np.clip(np.maximum(np.maximum(heart, 0.8 * band), 0.8 * knob), 0.0, 1.0)


def trachea(anatomy: Anatomy, g: Grid) -> FloatArray:
    """Air column of the trachea down to the carina, then the two main bronchi."""
    a, x, y = anatomy, g.x, g.y
    carina = 0.39
    tube = soft(0.014 - np.abs(x - a.spine_x), 0.004) * soft(carina - y, 0.01)
    below = np.clip(y - carina, 0.0, None)
    bronchi = np.zeros_like(x)
    for sign, slope in ((-1.0, 0.55), (1.0, 0.9)):
        centre = a.spine_x + sign * below / slope
        bronchi += soft(0.01 - np.abs(x - centre), 0.004) * soft(y - carina, 0.01) * soft(carina + 0.07 - y, 0.01)
    return np.clip(tube + bronchi, 0.0, 1.0)


def body_mask(anatomy: Anatomy, g: Grid) -> FloatArray:
    """Soft tissue of the trunk, neck and shoulders."""
    a, x, y = anatomy, g.x, g.y
    trunk = soft(a.chest_half_width + 0.07 + 0.05 * y - np.abs(x - a.spine_x), 0.01)
    shoulders = soft(y - 0.08 - 0.35 * (x - a.spine_x) ** 2, 0.015)
    neck = soft(0.08 - np.abs(x - a.spine_x), 0.01)
    return np.maximum(trunk * shoulders, neck)


def ribs(anatomy: Anatomy, g: Grid, lungs: FloatArray) -> FloatArray:
    """Posterior rib arcs (ten each side) with brighter cortical margins."""
    a, x, y = anatomy, g.x, g.y
    u = np.abs(x - a.spine_x) / a.chest_half_width  # 0 at the spine, 1 at the chest wall
    out = np.zeros_like(x)
    span = (max(a.dome_right, a.dome_left) - a.lung_top) / 9.0
    width = span * 0.27
    for k in range(11):
        y0 = a.lung_top - 0.04 + k * span * 0.95
        uc = np.clip(u, 0, 1.3)
        centre = y0 - 0.03 * np.sin(np.pi * np.clip(u, 0, 1) * 0.9) + 0.16 * uc**2
        d = np.abs(y - centre) / width
        out += soft(1.0 - d, 0.15) * (0.7 + 0.3 * soft(d - 0.7, 0.1))
    fade = soft(1.25 - u, 0.05) * soft(u - 0.08, 0.03)
    return out * fade


def clavicles(anatomy: Anatomy, g: Grid) -> FloatArray:
    """Two clavicles rising laterally from the sternal notch."""
    a, x, y = anatomy, g.x, g.y
    u = np.abs(x - a.spine_x)
    centre = a.lung_top + 0.02 - 0.25 * (u - 0.05) + 0.9 * (u - 0.17) ** 2
    d = np.abs(y - centre)
    return soft(0.016 - d, 0.004) * soft(u - 0.035, 0.01) * soft(0.3 - u, 0.02)


def spine(anatomy: Anatomy, g: Grid) -> FloatArray:
    """Vertebral column with faint end-plates."""
    a, x, y = anatomy, g.x, g.y
    col = soft(0.035 - np.abs(x - a.spine_x), 0.006)
    c2 = np.cos(2.0 * np.pi * y / 0.045) ** 2
    c4 = c2 * c2
    plates = 0.8 + 0.2 * c4 * c4
    pedicles = soft(0.01 - np.abs(np.abs(x - a.spine_x) - 0.025), 0.003) * 0.4
    return col * plates + pedicles * col


def breasts(anatomy: Anatomy, g: Grid) -> FloatArray:
    """Soft lower-zone density with a curved inferior border (female patients)."""
    if anatomy.breast_size <= 0.0:
        return np.zeros_like(g.x)
    a, x, y = anatomy, g.x, g.y
    out = np.zeros_like(x)
    for sign in (-1.0, 1.0):
        cx = a.spine_x + sign * a.chest_half_width * 0.6
        r = 0.12 + 0.05 * a.breast_size
        cy = a.dome_right - 0.02
        out += soft(1.0 - ((x - cx) / (r * 1.2)) ** 2 - ((y - cy) / r) ** 2, 0.15)
    return out * a.breast_size


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> FloatArray:
    """Low-frequency random field, roughly in [-1, 1]: cubic upsampling of a coarse grid.

    The spline is evaluated at half resolution and doubled, which is invisible for fields this
    smooth and four times cheaper.
    """
    coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    half = (size + 1) // 2
    field = ndimage.zoom(coarse, half / cells, order=3, mode="nearest")[:half, :half]
    field = np.repeat(np.repeat(field, 2, axis=0), 2, axis=1)[:size, :size]  # (size, size)
    return np.clip(field, -1.5, 1.5)
