"""Shared look and wording of the explanation figures: colours, titles, rounding.

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

from moe_app.labels import LABEL_TITLES

MODALITY_ORDER: tuple[str, ...] = ("image", "report", "vitals", "multimodal")
MODALITY_TITLES: dict[str, str] = {
    "image": "Image",
    "report": "Report",
    "vitals": "Vitals and labs",
    "multimodal": "Cross-modal",
}
MODALITY_COLOURS: dict[str, str] = {
    "image": "#0072B2",
    "report": "#E69F00",
    "vitals": "#009E73",
    "multimodal": "#CC79A7",
}
HIGHLIGHT = "#D55E00"  # the predicted / chosen diagnosis
NEUTRAL = "#8C9BAB"  # other diagnoses
GREY = "#BDBDBD"  # experts not used for this case
POSITIVE = "#D55E00"  # evidence for the diagnosis
NEGATIVE = "#0072B2"  # evidence against it
FONT = {"family": "Inter, Arial, sans-serif", "size": 13}


class ExpertInfo(Protocol):
    """What the figures read of an expert spec (`moe_app.model.experts.ExpertSpec`)."""

    name: str
    title: str
    modality: str
    requires: tuple[str, ...]
    description: str


def label_title(label: str) -> str:
    return LABEL_TITLES.get(label, label.replace("_", " ").capitalize())


def expert_title(name: str, experts: Mapping[str, ExpertInfo]) -> str:
    spec = experts.get(name)
    return spec.title if spec is not None else name.replace("_", " ").capitalize()


def expert_modality(name: str, experts: Mapping[str, ExpertInfo], fallback: str = "multimodal") -> str:
    spec = experts.get(name)
    return spec.modality if spec is not None else fallback


def expert_available(name: str, experts: Mapping[str, ExpertInfo], modalities: Mapping[str, bool]) -> bool:
    """Whether the expert's inputs are present (a cross-modal expert needs any one modality)."""
    spec = experts.get(name)
    if spec is None:
        return True
    if spec.requires:
        return all(modalities.get(m, False) for m in spec.requires)
    return any(modalities.values())


def ordered_experts(names: Sequence[str], experts: Mapping[str, ExpertInfo]) -> list[str]:
    """Experts grouped by modality (image, report, vitals, cross-modal), stable within a group."""
    rank = {m: i for i, m in enumerate(MODALITY_ORDER)}
    return sorted(names, key=lambda n: rank.get(expert_modality(n, experts), len(rank)))


def fmt(p: float, digits: int = 2) -> str:
    """A probability or weight as a clinician reads it: 0.64 (no percent sign, fixed digits)."""
    return f"{p:.{digits}f}"


def rounded_parts(parts: Sequence[float], digits: int = 3) -> list[float]:
    """Round `parts` so the rounded parts add up to the rounded total (largest remainder).

    Displayed contributions then add up exactly to the displayed probability.
    """
    scale = 10**digits
    total = round(math.fsum(parts) * scale)
    floors = [math.floor(p * scale) for p in parts]
    short = total - sum(floors)
    order = sorted(range(len(parts)), key=lambda i: parts[i] * scale - floors[i], reverse=True)
    for i in order[: max(short, 0)]:
        floors[i] += 1
    for i in list(reversed(order))[: max(-short, 0)]:
        floors[i] -= 1
    return [f / scale for f in floors]
