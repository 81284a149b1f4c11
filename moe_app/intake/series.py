"""Group DICOM instances into series, order them, and pick the series the model should see.

The model reads chest radiographs, so a projection radiograph (CR/DX) is preferred, a
frontal view (PA/AP) over a lateral one; otherwise the largest 2-D grey series wins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from moe_app.intake.dicom import number_of_frames
from moe_app.intake.sources import Source

PROJECTION_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})
FRONTAL_VIEWS = frozenset({"PA", "AP"})
_FRONTAL_WORDS = ("postero-anterior", "antero-posterior", "posteroanterior", "anteroposterior")
_COLOUR = frozenset(
    {
        "RGB",
        "PALETTE COLOR",
        "YBR_FULL",
        "YBR_FULL_422",
        "YBR_ICT",
        "YBR_RCT",
        "YBR_PARTIAL_420",
        "YBR_PARTIAL_422",
    }
)


@dataclass(frozen=True)
class Instance:
    """What intake needs to know about one image file, read from its header (original values)."""

    source: Source
    series_key: str  # SeriesInstanceUID, or a per-file key when it is missing
    instance_number: int | None
    position: float | None  # ImagePositionPatient along the slice normal, mm
    modality: str
    view: str  # "PA", "AP", "LL", ... or ""
    rows: int
    columns: int
    n_frames: int
    colour: bool
    patient_id: str
    study_uid: str
    patient_sex: str

    @property
    def frontal(self) -> bool:
        return self.view in FRONTAL_VIEWS


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword)
        return "" if value is None else str(value).strip()
    except (Exception, MemoryError):
        return ""


def _view(ds: Dataset) -> str:
    view = _text(ds, "ViewPosition").upper()
    if view:
        return view
    try:
        meaning = str(ds.ViewCodeSequence[0].CodeMeaning).lower()
    except (Exception, MemoryError):
        return ""
    if any(word in meaning for word in _FRONTAL_WORDS):
        return "AP" if meaning.startswith("antero") else "PA"
    return "LL" if "lateral" in meaning else ""


def _position(ds: Dataset) -> float | None:
    try:
        iop = [float(v) for v in ds.ImageOrientationPatient]
        ipp = [float(v) for v in ds.ImagePositionPatient]
        row, col = iop[:3], iop[3:6]
        normal = (
            row[1] * col[2] - row[2] * col[1],
            row[2] * col[0] - row[0] * col[2],
            row[0] * col[1] - row[1] * col[0],
        )
        value = sum(n * p for n, p in zip(normal, ipp, strict=False))
        return value if math.isfinite(value) else None
    except (Exception, MemoryError):
        return None


def summarize(ds: Dataset, source: Source) -> Instance:
    """Header facts of one parsed image file (the dataset is not kept)."""
    try:
        number = int(ds.get("InstanceNumber"))
    except (Exception, MemoryError):
        number = None
    return Instance(
        source=source,
        series_key=_text(ds, "SeriesInstanceUID") or f"unnamed series of {source.label}",
        instance_number=number,
        position=_position(ds),
        modality=_text(ds, "Modality").upper() or "OT",
        view=_view(ds),
        rows=int(ds.get("Rows") or 0),
        columns=int(ds.get("Columns") or 0),
        n_frames=number_of_frames(ds),
        colour=_text(ds, "PhotometricInterpretation").upper() in _COLOUR,
        patient_id=_text(ds, "PatientID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        patient_sex=_text(ds, "PatientSex").upper(),
    )


def order_instances(instances: Sequence[Instance]) -> list[Instance]:
    """Display order: InstanceNumber, then position along the normal, then file order."""
    order = {id(inst): k for k, inst in enumerate(instances)}  # input is in file-name order

    def key(inst: Instance) -> tuple[float, float, int]:
        number = inst.instance_number if inst.instance_number is not None else math.inf
        return (number, inst.position if inst.position is not None else 0.0, order[id(inst)])

    return sorted(instances, key=key)


def group_series(instances: Sequence[Instance]) -> dict[str, list[Instance]]:
    """Series key -> its instances in display order, series in order of first appearance."""
    groups: dict[str, list[Instance]] = {}
    for inst in instances:
        groups.setdefault(inst.series_key, []).append(inst)
    return {key: order_instances(members) for key, members in groups.items()}


def _tier(members: Sequence[Instance]) -> tuple[int, str]:
    first = members[0]
    if first.modality in PROJECTION_MODALITIES:
        if any(m.frontal for m in members):
            return 0, "it is a frontal chest radiograph (projection image, PA/AP view)"
        lateral = all(m.view in ("LL", "RL", "LATERAL", "LAT") for m in members)
        if not lateral:
            return 1, "it is a projection radiograph (view not stated)"
        return 2, "it is a projection radiograph (lateral view; no frontal view was found)"
    if not first.colour:
        return 3, "no projection radiograph was found; it is the largest grey-scale series"
    return 4, "no grey-scale series was found; it is the largest colour series"


def rank_series(groups: dict[str, list[Instance]]) -> list[tuple[str, str]]:
    """Series keys best first, each with the reason it would be picked."""

    def key(item: tuple[int, str]) -> tuple[int, int, int, int]:
        position, series = item
        members = groups[series]
        tier, _ = _tier(members)
        pixels = max(m.rows * m.columns for m in members)
        frames = sum(m.n_frames for m in members)
        return (tier, -pixels, -frames, position)

    ordered = sorted(enumerate(groups), key=key)
    return [(series, _tier(groups[series])[1]) for _, series in ordered]


def describe(members: Sequence[Instance], reason: str, rank: int, n_series: int) -> str:
    """Plain words on the picked series (no identifiers: modality, view, size, counts)."""
    first = members[0]
    frames = sum(m.n_frames for m in members)
    view = f", {first.view} view" if first.view else ""
    size = f"{first.rows} x {first.columns}"
    what = (
        f"{first.modality} series{view}: {len(members)} file(s), {frames} frame(s) of {size} pixels"
    )
    choice = (
        "the only series" if n_series == 1 else f"picked from {n_series} series because {reason}"
    )
    if rank > 0:
        choice += f" (series ranked higher could not be read, so choice {rank + 1} was used)"
    return f"{what}; {choice}."


def picked_frame(members: Sequence[Instance]) -> int:
    """Index (over all frames of the series) of the frame the model should see.

    The first frontal view of a projection series; otherwise the middle frame.
    """
    if members[0].modality in PROJECTION_MODALITIES:
        start = 0
        for member in members:
            if member.frontal:
                return start
            start += member.n_frames
        return 0
    return sum(m.n_frames for m in members) // 2
