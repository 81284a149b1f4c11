"""Branching linear structures (vessels, air bronchograms) drawn through a polar lookup table.

A tree radiating from a hilum is drawn once on a small (radius, angle) table, then sampled
for every pixel with one gather. This keeps the cost independent of the number of branches.
Angles are measured in a frame mirrored per side so 0 points laterally and the table seam
(at +-pi) lies medially, behind the mediastinum.
"""

from __future__ import annotations

import numpy as np

from moe_app.synth.anatomy import Grid

N_RADIUS = 64  # table rows (radius bins)
N_ANGLE = 1024  # table columns (angle bins)
_HALF_WINDOW = 24  # angle bins drawn either side of a branch axis


def tree_table(
    rng: np.random.Generator,
    n_branches: int,
    angle_range: tuple[float, float],
    reach: float,
    width: float,
    wiggle: float = 0.03,
) -> np.ndarray:
    """Draw a radiating, tapering, gently curving tree on a (N_RADIUS, N_ANGLE) table.

    Args:
        rng: random source.
        n_branches: number of linear structures.
        angle_range: range of initial directions (radians, 0 = lateral, positive = down).
        reach: radius covered by the table (normalised image units).
        width: half-width of a branch at its origin (normalised units).
        wiggle: amplitude of the angular wiggle of each branch (radians).

    Returns:
        Table of intensities in [0, ~1], indexed [radius bin, angle bin].
    """
    r = (np.arange(N_RADIUS, dtype=np.float32) + 0.5) / N_RADIUS * reach  # (R,)
    step = 2 * np.pi / N_ANGLE
    offsets = np.arange(-_HALF_WINDOW, _HALF_WINDOW + 1)  # (K,)
    centres, widths, alive = [], [], []
    for k in range(n_branches):  # branch paths are cheap 1-D curves; the drawing is batched below
        if centres and k % 2 == 1:  # every other branch splits off an earlier one
            start = float(rng.uniform(0.15, 0.45) * reach)
            parent = centres[int(rng.integers(len(centres)))]
            c0 = float(parent[min(int(start / reach * N_RADIUS), N_RADIUS - 1)])
            c0 += float((1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(0.12, 0.3))
        else:
            start, c0 = 0.0, float(rng.uniform(*angle_range))
        end = float(rng.uniform(0.65, 1.0) * reach)
        bend = float(rng.normal(0, 0.5))
        phase, freq = float(rng.uniform(0, 6.28)), float(rng.uniform(15, 40))
        centres.append(c0 + bend * (r - start) + wiggle * np.sin(freq * r + phase))  # (R,)
        taper = np.clip(1.0 - 0.8 * (r - start) / max(end - start, 1e-3), 0.15, 1.0)
        widths.append(width * taper * (0.7 if start > 0 else 1.0))  # (R,)
        alive.append((r >= start) & (r <= end))  # (R,)
    centre = np.stack(centres)  # (B, R)
    # only the columns near each branch axis are drawn: (B, R, K) instead of (B, R, A)
    cols = np.round((centre + np.pi) / step).astype(np.int64)[:, :, None] + offsets  # (B, R, K)
    d = (cols * step - np.pi) - centre[:, :, None]  # (B, R, K) angle from the axis
    perp = r[None, :, None] * np.sin(d) / np.stack(widths)[:, :, None]  # (B, R, K) in widths
    value = np.exp(-np.minimum(perp * perp, 40.0)) * np.stack(alive)[:, :, None]  # (B, R, K)
    flat = np.arange(N_RADIUS)[None, :, None] * N_ANGLE + cols % N_ANGLE  # (B, R, K)
    table = np.bincount(flat.ravel(), weights=value.ravel(), minlength=N_RADIUS * N_ANGLE)
    table = table.reshape(N_RADIUS, N_ANGLE).astype(np.float32)  # (R, A)
    return np.clip(table, 0.0, 1.3)


def sample_tree(
    table: np.ndarray, g: Grid, origin: tuple[float, float], reach: float, lateral_sign: float
) -> np.ndarray:
    """Sample a tree table on the image grid around `origin` (nearest-neighbour gather).

    `lateral_sign` is -1 for a tree spreading to the image left, +1 to the image right.
    """
    dx = (g.x - origin[0]) * lateral_sign
    dy = g.y - origin[1]
    r = np.sqrt(dx * dx + dy * dy)
    ri = np.minimum((r / reach * N_RADIUS).astype(np.int32), N_RADIUS - 1)
    ai = ((np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * N_ANGLE).astype(np.int32) % N_ANGLE
    out = table[ri, ai]
    return np.where(r < reach, out, 0.0).astype(np.float32)


def short_lines(
    rng: np.random.Generator, g: Grid, x_edge: float, y_range: tuple[float, float], inward: float
) -> np.ndarray:
    """Kerley-B-like short horizontal lines running in from the chest wall at `x_edge`."""
    out = np.zeros_like(g.x)
    for _ in range(int(rng.integers(4, 8))):
        y0 = float(rng.uniform(*y_range))
        length = float(rng.uniform(0.02, 0.04))
        along = (g.x - x_edge) * np.sign(inward)  # distance in from the wall
        on_line = (along > 0) & (along < length)
        out += np.exp(-(((g.y - y0) / 0.0022) ** 2)) * on_line
    return out
