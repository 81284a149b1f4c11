"""Assemble a de-identified `Case` from a case folder or from an upload.

The one entry point for everything a user hands in. Every failure is a `CaseError`
(anything unexpected from a library is wrapped), nothing is written to disk, and the
original identifiers never leave this module: only the pseudonym, the de-identified
header and the scrubbed report do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from moe_app.config import IntakeLimits
from moe_app.deid import content_pseudonym, pseudonym, scrub_report
from moe_app.errors import CaseError
from moe_app.intake.case import Case, ImageStudy
from moe_app.intake.dicom import describe_content, has_pixels, looks_like_dicom, parse
from moe_app.intake.report import decode_report
from moe_app.intake.series import (
    Instance,
    describe,
    group_series,
    picked_frame,
    rank_series,
    summarize,
)
from moe_app.intake.sources import REPORT_NAME, VITALS_NAME, Source, folder_sources, upload_sources
from moe_app.intake.study import build_study
from moe_app.intake.vitals import parse_vitals, parse_vitals_json

T = TypeVar("T")


@dataclass
class _Scan:
    """What a pass over the sources found (original identifiers stay in here)."""

    instances: list[Instance] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)
    failures: list[CaseError] = field(default_factory=list)
    not_dicom: list[str] = field(default_factory=list)  # what each ignored file looks like
    report: bytes | None = None
    vitals: bytes | None = None
    identity: tuple[str, str] | None = None  # (PatientID, StudyInstanceUID) of any DICOM seen


def _scan(sources: Sequence[Source], *, explicit: bool, side_files: bool) -> _Scan:
    """Read every source once: sort out report/vitals, summarise DICOM headers.

    explicit: the user picked these files one by one (uploads), so one that is not a
    readable DICOM image is a failure, raised when the case ends up without an image and
    a warning otherwise. In folders and zips, non-DICOM files and DICOM files without
    pixel data (DICOMDIR, reports) are skipped; only damaged DICOM files count as failures.
    """
    scan = _Scan()
    for source in sources:
        name = source.name.lower()
        if side_files and name in (REPORT_NAME, VITALS_NAME):
            attribute = "report" if name == REPORT_NAME else "vitals"
            if getattr(scan, attribute) is not None:
                raise CaseError(f"The case holds more than one {name}; keep a single one.")
            setattr(scan, attribute, source.read())
            continue
        data = source.read()
        scan.hashes[source.label] = hashlib.sha256(data).hexdigest()
        if not looks_like_dicom(data[:1024]):
            what = describe_content(data[:1024])
            if explicit:
                scan.failures.append(
                    CaseError(
                        f"{source.label.capitalize()} is not a DICOM file (it looks like {what})."
                    )
                )
            else:
                scan.not_dicom.append(what)
            continue
        try:
            ds = parse(data, source.label)
        except CaseError as exc:
            scan.failures.append(exc)
            continue
        del data
        if scan.identity is None:
            scan.identity = (
                str(ds.get("PatientID", "") or ""),
                str(ds.get("StudyInstanceUID", "") or ""),
            )
        if has_pixels(ds):
            scan.instances.append(summarize(ds, source))
        elif explicit:
            scan.failures.append(
                CaseError(
                    f"{source.label.capitalize()} holds no image (no pixel data); it may be a report or a directory file."
                )
            )
    return scan


def _check_one_patient(instances: Sequence[Instance]) -> None:
    patients = {i.patient_id for i in instances if i.patient_id}
    if len(patients) > 1:
        raise CaseError(
            f"The images belong to {len(patients)} different patients (different Patient IDs). "
            "Load one patient's case at a time."
        )


def _pick_study(
    scan: _Scan, *, key: bytes, limits: IntakeLimits
) -> tuple[ImageStudy | None, Instance | None, list[str]]:
    """Try the series best first; a series that fails to decode falls back to the next."""
    if not scan.instances:
        if scan.failures:
            raise scan.failures[0]
        return None, None, []
    groups = group_series(scan.instances)
    errors: list[CaseError] = []
    for rank, (series, reason) in enumerate(rank_series(groups)):
        members = groups[series]
        try:
            study, warnings = build_study(
                members,
                picked_frame(members),
                describe(members, reason, rank, len(groups)),
                len(groups),
                key=key,
                limits=limits,
            )
        except CaseError as exc:
            errors.append(exc)
            continue
        if errors:
            warnings.insert(
                0,
                f"{len(errors)} series could not be read and were skipped; first reason: {errors[0]}",
            )
        return study, members[0], warnings
    raise errors[0]


def _wrap(action: Callable[[], T]) -> T:
    """Run intake; anything that is not already a CaseError becomes one (no other escapes)."""
    try:
        return action()
    except CaseError:
        raise
    except MemoryError:
        raise CaseError(
            "The case is too large to load on this machine; load fewer images."
        ) from None
    except Exception as exc:  # a library failure we did not foresee: still a plain message
        raise CaseError(
            f"The case could not be read ({type(exc).__name__}). Check the files and try again."
        ) from None


def _assemble(
    scan: _Scan,
    *,
    case_id: str,
    report_text: str | None,
    vitals: Mapping[str, object] | str | None,
    key: bytes,
    limits: IntakeLimits,
) -> Case:
    warnings: list[str] = []
    if scan.not_dicom:
        warnings.append(
            f"{len(scan.not_dicom)} file(s) were ignored because they are not DICOM (e.g. {scan.not_dicom[0]})."
        )
    if scan.failures and scan.instances:
        warnings.append(
            f"{len(scan.failures)} file(s) could not be read and were skipped; first reason: {scan.failures[0]}"
        )
    # Report and vitals first: they are cheap to check, so their errors come at once.
    hashes = dict(scan.hashes)
    report: str | None = None
    if report_text is not None or scan.report is not None:
        raw = report_text.encode("utf-8") if report_text is not None else scan.report or b""
        hashes["report"] = hashlib.sha256(raw).hexdigest()
        report = scrub_report(decode_report(raw, limits)).strip() or None
    numbers: dict[str, float] = {}
    sex: str | None = None
    if isinstance(vitals, Mapping):
        canonical = json.dumps(vitals, sort_keys=True, default=str).encode()
        hashes["vitals"] = hashlib.sha256(canonical).hexdigest()
        numbers, sex = parse_vitals(vitals)
    elif vitals is not None or scan.vitals is not None:
        raw_vitals = vitals.encode("utf-8") if isinstance(vitals, str) else scan.vitals or b""
        hashes["vitals"] = hashlib.sha256(raw_vitals).hexdigest()
        if raw_vitals.strip():
            numbers, sex = parse_vitals_json(raw_vitals)

    _check_one_patient(scan.instances)
    image, picked, image_warnings = _pick_study(scan, key=key, limits=limits)
    warnings += image_warnings
    if sex is None and picked is not None and picked.patient_sex in ("F", "M"):
        sex = picked.patient_sex  # from the DICOM header, as the vitals do not say

    if image is None and report is None and not numbers:
        raise CaseError(
            "The case is empty: no image (DICOM with pixel data), no report text and no vitals "
            "were found. Add at least one of them."
        )
    if picked is not None:
        name = pseudonym(key, picked.patient_id, picked.study_uid)
    elif scan.identity is not None:
        name = pseudonym(key, *scan.identity)
    else:
        name = content_pseudonym(key, list(hashes.values()))
    return Case(
        case_id=case_id,
        pseudonym=name,
        image=image,
        report=report,
        vitals=numbers or None,
        sex=sex,
        warnings=tuple(warnings),
        input_hashes=hashes,
    )


def load_case_folder(path: Path, *, key: bytes, limits: IntakeLimits = IntakeLimits()) -> Case:
    """Load a case folder: DICOM files anywhere (found by content), report.txt, vitals.json.

    Files that are not DICOM are skipped with a warning; unreadable DICOM files are skipped
    with a warning when the case still has an image, otherwise their error is raised.

    Args:
        path: The case folder; its name becomes `case_id`.
        key: The pseudonym key (`moe_app.deid.load_or_create_key`).
        limits: File-count, size and image-dimension bounds.

    Returns:
        The de-identified Case.

    Raises:
        CaseError: Anything wrong with the case, in words the user can act on.
    """
    folder = Path(path)

    def load() -> Case:
        if not folder.is_dir():
            raise CaseError("The case folder does not exist or is not a folder.")
        scan = _scan(folder_sources(folder, limits), explicit=False, side_files=True)
        return _assemble(
            scan, case_id=folder.name, report_text=None, vitals=None, key=key, limits=limits
        )

    return _wrap(load)


def load_upload(
    files: Sequence[Path],
    *,
    report_text: str | None,
    vitals: Mapping[str, object] | str | None,
    key: bytes,
    case_id: str,
    limits: IntakeLimits = IntakeLimits(),
) -> Case:
    """Load what the UI received: DICOM files and/or zips, a typed report, vitals.

    An uploaded file that is not a readable DICOM image is an error when no image loads,
    and a warning beside images that do (a CD export also holds DICOMDIR and other files).
    Zips are read in memory (entries with absolute paths or '..' refuse the whole zip) and
    treated like a case folder, including a report.txt / vitals.json inside, which a typed
    report / vitals override.

    Args:
        files: Uploaded files (DICOM or .zip), in upload order.
        report_text: The report as typed or uploaded, or None.
        vitals: Field -> value, or the same as JSON text, or None.
        key: The pseudonym key.
        case_id: A name for the case chosen by the UI (never a patient identifier).
        limits: File-count, size and image-dimension bounds.

    Raises:
        CaseError: Anything wrong with the upload, in words the user can act on.
    """

    def load() -> Case:
        sources = list(upload_sources([Path(f) for f in files], limits))
        merged = _merge(
            [
                _scan([s for s in sources if not s.in_archive], explicit=True, side_files=False),
                _scan([s for s in sources if s.in_archive], explicit=False, side_files=True),
            ]
        )
        typed_vitals = vitals if vitals not in ("", {}) else None
        typed_report = report_text if report_text and report_text.strip() else None
        return _assemble(
            merged,
            case_id=case_id,
            report_text=typed_report,
            vitals=typed_vitals,
            key=key,
            limits=limits,
        )

    return _wrap(load)


def _merge(scans: Sequence[_Scan]) -> _Scan:
    out = _Scan()
    for scan in scans:
        out.instances += scan.instances
        out.failures += scan.failures
        out.not_dicom += scan.not_dicom
        out.hashes.update(scan.hashes)
        out.report = out.report if out.report is not None else scan.report
        out.vitals = out.vitals if out.vitals is not None else scan.vitals
        out.identity = out.identity or scan.identity
    return out
