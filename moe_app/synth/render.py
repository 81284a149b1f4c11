"""Compose anatomy and findings into a film: density map -> detector-like image in [0, 1]."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from moe_app.synth import anatomy as an
from moe_app.synth.findings import Consolidation, Findings
from moe_app.synth.markings import sample_tree, short_lines, tree_table

ZONE_Y: dict[str, tuple[float, float]] = {"upper": (0.2, 0.4), "mid": (0.4, 0.58), "lower": (0.56, 0.78)}


@dataclass(frozen=True)
class Film:
    """A rendered film: `pixels` (H, W) float32 in [0, 1], bright = dense, plus geometry facts."""

    pixels: np.ndarray
    ctr: float  # cardiothoracic ratio as drawn
    ptx_bbox: tuple[float, float, float, float] | None  # (x0, y0, x1, y1) of the air rim, image fractions
    pleural_line_x: float | None  # image x (fraction) of the visceral pleural line at its widest row


def _side_sign(side: str) -> float:
    """Image direction of a patient side: the patient's right is on the image left."""
    return -1.0 if side == "right" else 1.0


def _lung_geometry(a: an.Anatomy, side: str) -> tuple[float, float, float, float]:
    """Centre and radii (xc, yc, rx, ry) of the lung ellipse of `side` (as in anatomy.lung_masks)."""
    sign = _side_sign(side)
    dome = a.dome_right if side == "right" else a.dome_left
    ry = (dome + 0.08 - a.lung_top) / 2.0
    return a.spine_x + sign * a.chest_half_width * 0.52, a.lung_top + ry, a.chest_half_width * 0.55, ry


def _consolidation(
    rng: np.random.Generator, c: Consolidation, a: an.Anatomy, g: an.Grid, lung: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Opacity field of one consolidation and its air-bronchogram mask (both (H, W))."""
    size = g.x.shape[0]
    xc, _, rx, _ = _lung_geometry(a, c.side)
    y0, y1 = ZONE_Y[c.zone]
    cy = (y0 + y1) / 2 + rng.normal(0, 0.02)
    cx = xc + _side_sign(c.side) * rng.uniform(-0.2, 0.35) * rx
    ry, rxx = (y1 - y0) * (0.5 + 0.5 * c.extent), rx * (0.45 + 0.5 * c.extent)
    env = 1.0 - ((g.x - cx) / rxx) ** 2 - ((g.y - cy) / ry) ** 2
    tex = an.smooth_noise(rng, size, 10)
    sharp_top = c.lobar and c.side == "right" and c.zone == "mid"  # horizontal fissure
    sharp_bottom = c.lobar and c.zone == "upper"
    if c.lobar:  # confluent lobar opacity, homogeneous, fading towards the edge of the lobe
        field = an.soft(env + 0.2 * tex + 0.3, 0.15)
    else:  # patchy, ill-defined airspace opacity
        field = an.soft(env + 0.7 * tex - 0.1, 0.12)
    if sharp_top:
        field = field * an.soft(g.y - (y0 - 0.01), 0.004)
    if sharp_bottom:
        field = field * an.soft((y1 + 0.02) - g.y, 0.004)
    field = field * lung * c.density
    bronch = np.zeros_like(field)
    if c.bronchograms:
        hilum = (a.spine_x + _side_sign(c.side) * 0.09, 0.45)
        table = tree_table(rng, 10, (-0.6, 1.2), 0.32, 0.0045, wiggle=0.05)
        bronch = sample_tree(table, g, hilum, 0.32, _side_sign(c.side)) * an.soft(field - 0.45, 0.08)
    return field, bronch


def _effusion(a: an.Anatomy, g: an.Grid, side: str, height: float, lung: np.ndarray) -> np.ndarray:
    """Dependent fluid with a meniscus rising laterally; blunts the costophrenic angle."""
    xc, _, rx, _ = _lung_geometry(a, side)
    dome = a.dome_right if side == "right" else a.dome_left
    lateral = np.clip(_side_sign(side) * (g.x - xc) / rx, -1.0, 1.2)
    level = dome + 0.07 - height * (1.0 + 0.8 * (lateral + 1.0) ** 2 / 2.0)
    below_dome = an.soft(0.05 - (g.y - an.dome_y(a, g.x)), 0.01)
    side_mask = an.soft(_side_sign(side) * (g.x - a.spine_x) - 0.05, 0.01)
    return an.soft(g.y - level, 0.012) * below_dome * side_mask * np.clip(lung / 0.65, 0.0, 1.0)


def _pneumothorax(
    a: an.Anatomy, g: an.Grid, f: Findings, lung: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Air rim lateral/apical to the visceral pleural line, the line itself, the collapsed lung."""
    assert f.ptx_side is not None, "pneumothorax drawing needs a side"
    xc, yc, rx, ry = _lung_geometry(a, f.ptx_side)
    sign = _side_sign(f.ptx_side)
    d = f.ptx_depth
    # the collapsing lung shrinks towards the hilum: inner ellipse shifted medially and down
    inner = 1.0 - ((g.x - xc + sign * d * 0.6) / (rx - d)) ** 2 - ((g.y - yc - d * 0.7) / (ry - d)) ** 2
    lateral_part = an.soft(sign * (g.x - xc) + 0.55 * rx, 0.02)
    height = a.lung_top + (0.2 if f.ptx_apical_only else 0.55)
    vertical = an.soft(height - g.y, 0.03)
    rim = an.soft(-inner, 0.01) * lung * lateral_part * vertical
    line = np.exp(-((inner / 0.012) ** 2)) * lung * lateral_part * vertical
    collapsed = an.soft(inner, 0.02) * lung * min(d / 0.08, 1.0)  # deflated lung is denser
    return rim, line, collapsed


def _facts_from_rim(rim: np.ndarray) -> tuple[tuple[float, float, float, float] | None, float | None]:
    """Bounding box of the air rim and x of the pleural line (the rim's medial edge) at its widest row."""
    mask = rim > 0.5
    if not mask.any():
        return None, None
    h, w = rim.shape
    ys, xs = np.nonzero(mask)
    bbox = (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)
    row_xs = np.nonzero(mask[int(np.argmax(mask.sum(axis=1)))])[0]
    on_image_left = xs.mean() < w / 2
    line_x = (row_xs.max() + 1) / w if on_image_left else row_xs.min() / w
    return tuple(round(float(v), 4) for v in bbox), round(float(line_x), 4)  # type: ignore[return-value]


def _with_findings_geometry(a: an.Anatomy, f: Findings) -> an.Anatomy:
    a = dataclasses.replace(a, heart_left=a.heart_left * f.heart_scale, heart_right=a.heart_right * (1 + 0.7 * (f.heart_scale - 1)))
    if f.elevated_hemidiaphragm == "right":
        a = dataclasses.replace(a, dome_right=a.dome_right - 0.05)
    elif f.elevated_hemidiaphragm == "left":
        a = dataclasses.replace(a, dome_left=a.dome_left - 0.05)
    return a


def render_film(a0: an.Anatomy, f: Findings, size: int, rng: np.random.Generator) -> Film:
    """Draw one chest film.

    Args:
        a0: patient geometry.
        f: findings to draw.
        size: output rows and columns.
        rng: random source (markings, texture, exposure, noise).

    Returns:
        The film with its ground-truth geometry.
    """
    a = _with_findings_geometry(a0, f)
    # large films are drawn at half resolution (4x cheaper) and upsampled before blur and noise
    work = size // 2 if size >= 384 and size % 2 == 0 else size
    g = an.make_grid(work, a)
    body = an.body_mask(a, g)
    heart = an.heart_mask(a, g)
    lr, ll = an.lung_masks(a, g)
    lungs = {"right": lr * (1.0 - heart), "left": ll * (1.0 - heart)}
    lung = lungs["right"] + lungs["left"]
    inside = an.soft(a.chest_half_width - np.abs(g.x - a.spine_x), 0.02)
    below = an.soft(g.y - an.dome_y(a, g.x), 0.006) * body * inside

    vessels = np.zeros_like(lung)
    for side in ("right", "left"):
        sign = _side_sign(side)
        hilum = (a.spine_x + sign * 0.085, 0.44 + 0.02 * (side == "left"))
        n = 14 if f.oligaemia_side == side else 30
        table = tree_table(rng, n, (-1.5, 1.3), 0.42, 0.007)
        upper = an.soft(0.4 - g.y, 0.05)
        boost = 1.0 + 0.8 * f.upper_lobe_diversion * upper
        vessels += sample_tree(table, g, hilum, 0.42, sign) * lungs[side] * boost
        hilum_blob = np.exp(-(((g.x - hilum[0]) / 0.035) ** 2 + ((g.y - hilum[1] - 0.02) / 0.06) ** 2))
        vessels += 0.6 * hilum_blob * (1 + f.perihilar_haze)
    vessels *= 1.0 - 0.75 * an.soft(np.abs(g.x - a.spine_x) - 0.25, 0.04)  # fewer markings peripherally

    mottle = an.smooth_noise(rng, work, 48) * lung
    dens = 1.0 * body - 0.62 * lung + np.maximum(0.28 * heart * body, 0.26 * below) - 0.1 * an.trachea(a, g)
    dens += 0.06 * an.spine(a, g) + 0.11 * an.ribs(a, g, lung) * body * (0.3 + 0.7 * np.clip(lung / 0.65, 0, 1)) * (1.0 - 0.6 * heart)
    dens += 0.2 * an.clavicles(a, g) + 0.1 * an.breasts(a, g) * body + 0.09 * vessels + 0.025 * mottle
    if f.perihilar_haze > 0:
        for side in ("right", "left"):
            hx = a.spine_x + _side_sign(side) * 0.12
            haze = np.exp(-(((g.x - hx) / 0.12) ** 2 + ((g.y - 0.47) / 0.15) ** 2))
            dens += 0.2 * f.perihilar_haze * haze * lungs[side]
    if f.kerley_lines:
        for side in ("right", "left"):
            xc, _, rx, _ = _lung_geometry(a, side)
            edge = xc + _side_sign(side) * rx * 0.97
            dens += 0.1 * short_lines(rng, g, edge, (0.6, 0.72), -_side_sign(side)) * lungs[side]
    for c in f.consolidations:
        field, bronch = _consolidation(rng, c, a, g, lungs[c.side])
        dens += 0.5 * field - 0.22 * bronch
    for side, h in (("right", f.effusion_right), ("left", f.effusion_left)):
        if h > 0:
            dens += 0.55 * _effusion(a, g, side, h, lungs[side])
    if f.platelike_atelectasis:
        xc, _, rx, _ = _lung_geometry(a, f.platelike_atelectasis)
        band = np.exp(-(((g.y - 0.64 - 0.1 * (g.x - xc)) / 0.005) ** 2)) * an.soft(rx * 0.5 - np.abs(g.x - xc), 0.01)
        dens += 0.12 * band * lungs[f.platelike_atelectasis]
    bbox, line_x = None, None
    if f.ptx_side is not None:
        rim, line, collapsed = _pneumothorax(a, g, f, lungs[f.ptx_side])
        dens += -0.09 * vessels * rim - 0.025 * mottle * rim - 0.1 * rim + 0.12 * line + 0.05 * collapsed
        bbox, line_x = _facts_from_rim(rim)
    ctr = (a.heart_left + a.heart_right) * an.HEART_WIDTH_FACTOR / (2 * a.chest_half_width)
    return Film(pixels=_expose(dens, size, rng), ctr=round(float(ctr), 4), ptx_bbox=bbox, pleural_line_x=line_x)


def _expose(dens: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Exposure, contrast and heel effect, upsampling to `size`, blur, quantum noise -> [0, 1]."""
    gamma = rng.uniform(0.8, 1.25)
    heel = 1.0 + 0.04 * an.smooth_noise(rng, dens.shape[0], 4)
    img = np.clip(dens * heel / 1.6, 0.0, 1.0) ** gamma
    factor = size // dens.shape[0]
    if factor > 1:  # pixel repeat, then the detector blur below smooths the blocks away
        img = np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)  # (size, size)
    img = ndimage.gaussian_filter(img, sigma=0.45 * factor + 0.25, truncate=2.5)
    img += rng.normal(0, rng.uniform(0.008, 0.02), img.shape).astype(np.float32)
    lo, hi = rng.uniform(0.0, 0.06), rng.uniform(0.9, 1.0)
    return np.clip(lo + (hi - lo) * img, 0.0, 1.0).astype(np.float32)
