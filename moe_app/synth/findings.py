"""What a film shows: the latent radiographic findings of one case, drawn per diagnosis.

The same `Findings` drive the pixels (render.py), the radiologist's read (report.py) and
the manifest's ground truth, so the three stay consistent by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDES: tuple[str, ...] = ("right", "left")  # patient sides
ZONES: tuple[str, ...] = ("upper", "mid", "lower")


@dataclass(frozen=True)
class Consolidation:
    side: str  # "right" / "left" (patient side)
    zone: str  # "upper" / "mid" / "lower"
    extent: float  # 0..1, share of the zone involved
    density: float  # 0..1, how opaque
    lobar: bool  # sharp fissural margin instead of patchy
    bronchograms: bool  # air bronchograms drawn


@dataclass(frozen=True)
class Findings:
    """Radiographic findings of one film; all-default means a normal film."""

    consolidations: tuple[Consolidation, ...] = ()
    heart_scale: float = 1.0  # >1 enlarges the cardiac silhouette
    effusion_right: float = 0.0  # share of the hemithorax height filled (0 = none)
    effusion_left: float = 0.0
    perihilar_haze: float = 0.0  # 0..1 interstitial oedema
    upper_lobe_diversion: float = 0.0  # 0..1 prominence of upper-zone vessels
    kerley_lines: bool = False
    ptx_side: str | None = None  # pneumothorax side (patient side)
    ptx_depth: float = 0.0  # rim of air between chest wall and pleural line (normalised)
    ptx_apical_only: bool = False
    oligaemia_side: str | None = None  # Westermark: sparse vessels in one lung
    elevated_hemidiaphragm: str | None = None
    platelike_atelectasis: str | None = None

    @property
    def ptx_visible(self) -> bool:
        """Whether a reader would call the pneumothorax (a tiny apical rim is easily missed)."""
        return self.ptx_side is not None and self.ptx_depth >= 0.02


def _pneumonia(rng: np.random.Generator, subtle: bool) -> Findings:
    n = 1 if rng.random() < 0.75 else 2
    sides = list(rng.choice(SIDES, size=n, replace=False)) if n == 2 else [str(rng.choice(SIDES, p=[0.6, 0.4]))]
    cons = []
    for side in sides:
        zone = str(rng.choice(ZONES, p=[0.15, 0.3, 0.55]))
        cons.append(
            Consolidation(
                side=str(side),
                zone=zone,
                extent=float(rng.uniform(0.25, 0.45) if subtle else rng.uniform(0.55, 1.0)),
                density=float(rng.uniform(0.35, 0.5) if subtle else rng.uniform(0.65, 1.0)),
                lobar=bool(rng.random() < 0.45),
                bronchograms=bool(not subtle and rng.random() < 0.75),
            )
        )
    eff = float(rng.uniform(0.03, 0.07)) if rng.random() < 0.15 else 0.0
    side = cons[0].side
    return Findings(
        consolidations=tuple(cons),
        effusion_right=eff if side == "right" else 0.0,
        effusion_left=eff if side == "left" else 0.0,
    )


def _heart_failure(rng: np.random.Generator, subtle: bool) -> Findings:
    pattern = rng.random()
    both = pattern < 0.65
    one = pattern < 0.85
    right_eff = float(rng.uniform(0.06, 0.22)) if one else 0.0
    left_eff = float(rng.uniform(0.05, 0.18)) if both else 0.0
    if subtle:
        right_eff, left_eff = right_eff * 0.4, left_eff * 0.4
    return Findings(
        heart_scale=float(rng.uniform(1.1, 1.18) if subtle else rng.uniform(1.22, 1.45)),
        effusion_right=right_eff,
        effusion_left=left_eff,
        perihilar_haze=float(rng.uniform(0.15, 0.35) if subtle else rng.uniform(0.4, 1.0)),
        upper_lobe_diversion=float(rng.uniform(0.3, 1.0)),
        kerley_lines=bool(not subtle and rng.random() < 0.45),
    )


def _pneumothorax(rng: np.random.Generator, subtle: bool) -> Findings:
    return Findings(
        ptx_side=str(rng.choice(SIDES)),
        ptx_depth=float(rng.uniform(0.012, 0.02) if subtle else rng.uniform(0.03, 0.11)),
        ptx_apical_only=bool(subtle or rng.random() < 0.2),
    )


def _incidental(rng: np.random.Generator) -> Findings:
    """Minor findings that appear both in PE and in normal films (so they do not separate them)."""
    kind = int(rng.integers(4))
    side = str(rng.choice(SIDES))
    if kind == 0:
        eff = float(rng.uniform(0.02, 0.05))
        return Findings(effusion_right=eff if side == "right" else 0.0, effusion_left=eff if side == "left" else 0.0)
    if kind == 1:
        return Findings(oligaemia_side=side)
    if kind == 2:
        return Findings(platelike_atelectasis=side)
    return Findings(elevated_hemidiaphragm=side)


def sample_findings(label: str, rng: np.random.Generator, subtle: bool) -> Findings:
    """Draw the film findings of one case of diagnosis `label`.

    Args:
        label: one of moe_app.labels.LABELS.
        rng: the case's random source.
        subtle: draw the faint version of the pattern (hard to see on the film).

    Returns:
        The findings to render and report.
    """
    if label == "pneumonia":
        return _pneumonia(rng, subtle)
    if label == "heart_failure":
        return _heart_failure(rng, subtle)
    if label == "pneumothorax":
        return _pneumothorax(rng, subtle)
    # PE: usually a normal film, sometimes the same minor signs a normal film can show
    incidental_rate = 0.25 if label == "pulmonary_embolism" else 0.2
    return _incidental(rng) if rng.random() < incidental_rate else Findings()


def merge(primary: Findings, extra: Findings) -> Findings:
    """Overlay a second pattern on a film (ambiguous cases)."""
    return Findings(
        consolidations=primary.consolidations + extra.consolidations,
        heart_scale=max(primary.heart_scale, extra.heart_scale),
        effusion_right=max(primary.effusion_right, extra.effusion_right),
        effusion_left=max(primary.effusion_left, extra.effusion_left),
        perihilar_haze=max(primary.perihilar_haze, extra.perihilar_haze),
        upper_lobe_diversion=max(primary.upper_lobe_diversion, extra.upper_lobe_diversion),
        kerley_lines=primary.kerley_lines or extra.kerley_lines,
        ptx_side=primary.ptx_side or extra.ptx_side,
        ptx_depth=max(primary.ptx_depth, extra.ptx_depth),
        ptx_apical_only=primary.ptx_apical_only or extra.ptx_apical_only,
        oligaemia_side=primary.oligaemia_side or extra.oligaemia_side,
        elevated_hemidiaphragm=primary.elevated_hemidiaphragm or extra.elevated_hemidiaphragm,
        platelike_atelectasis=primary.platelike_atelectasis or extra.platelike_atelectasis,
    )
