"""Write a rendered film as a CR/DX DICOM file with realistic tags and invented identifiers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

from moe_app.synth.identity import Identity

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray, For Presentation
MAX_STORED = 4095  # 12 bits stored
# Transfer syntaxes the installed pydicom plugins can encode (JPEG-LS needs pyjpegls: absent).
COMPRESSED_SYNTAXES: tuple[str, ...] = (RLELossless, JPEG2000Lossless)


@dataclass(frozen=True)
class DicomStyle:
    """How the file is encoded; drawn per case so the set covers what intake meets in practice."""

    modality: str  # "CR" / "DX"
    view: str  # "PA" / "AP"
    photometric: str  # "MONOCHROME2" / "MONOCHROME1"
    transfer_syntax: str  # UID
    slope: float
    intercept: float
    two_windows: bool  # a second (lung) window in WindowCenter/Width


def sample_style(
    rng: np.random.Generator, p_monochrome1: float = 0.1, p_compressed: float = 0.2
) -> DicomStyle:
    """Draw the encoding of one file (fixed number of draws, whatever the outcome)."""
    u = rng.random(6)
    slope, intercept = ((1.0, 0.0), (1.0, 0.0), (1.0, 0.0), (0.5, 0.0), (1.0, -1024.0))[int(u[4] * 5)]
    ts = ExplicitVRLittleEndian
    if u[3] < p_compressed:
        ts = COMPRESSED_SYNTAXES[int(u[3] / p_compressed * len(COMPRESSED_SYNTAXES))]
    return DicomStyle(
        modality="CR" if u[0] < 0.5 else "DX",
        view="PA" if u[1] < 0.7 else "AP",
        photometric="MONOCHROME1" if u[2] < p_monochrome1 else "MONOCHROME2",
        transfer_syntax=ts,
        slope=slope,
        intercept=intercept,
        two_windows=bool(u[5] < 0.15),
    )


def stored_pixels(pixels: np.ndarray, style: DicomStyle) -> np.ndarray:
    """Map display values in [0, 1] (bright = dense) to 12-bit stored values for `style`."""
    values = np.round(pixels * MAX_STORED).astype(np.uint16)
    if style.photometric == "MONOCHROME1":  # bright = low value: invert
        values = (MAX_STORED - values).astype(np.uint16)
    return values


def _window(stored: np.ndarray, style: DicomStyle) -> tuple[float, float, float, float]:
    """Default (centre, width) and lung (centre, width) in rescaled units."""
    rescaled = stored.astype(np.float32) * style.slope + style.intercept
    lo, hi = np.percentile(rescaled[::4, ::4], [1.0, 99.5])
    width = max(float(hi - lo), 1.0)
    lung_lo, lung_hi = np.percentile(rescaled[::4, ::4], [5.0, 60.0])
    return (float(lo + hi) / 2.0, width, float(lung_lo + lung_hi) / 2.0, max(float(lung_hi - lung_lo) * 1.5, 1.0))


def _uid(*parts: object) -> str:
    return str(generate_uid(entropy_srcs=[str(p) for p in parts]))


def build_dataset(pixels: np.ndarray, identity: Identity, sex: str, style: DicomStyle, uid_key: str) -> Dataset:
    """Build the DICOM dataset of one film.

    Args:
        pixels: (H, W) float in [0, 1], bright = dense.
        identity: invented patient/study identifiers for the header.
        sex: "F" / "M".
        style: encoding choices.
        uid_key: stable text the UIDs derive from (same key, same UIDs).

    Returns:
        Dataset with file meta, pixel data encoded in `style.transfer_syntax`.
    """
    when = identity.study_datetime
    sop_class = CR_STORAGE if style.modality == "CR" else DX_STORAGE
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = _uid(uid_key, "sop")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid(uid_key, "study")
    ds.SeriesInstanceUID = _uid(uid_key, "series")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Modality = style.modality
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = when.strftime("%H%M%S")
    ds.AccessionNumber = identity.accession
    ds.InstitutionName = identity.institution
    ds.InstitutionAddress = f"{int(when.minute) + 1} Hospital Road, Springfield"
    ds.ReferringPhysicianName = identity.referring_physician
    ds.StationName = identity.station
    ds.OperatorsName = identity.radiologist.replace("Dr ", "").replace(" ", "^")
    ds.StudyDescription = f"XR CHEST {style.view}"
    ds.SeriesDescription = f"CHEST {style.view}"
    ds.Manufacturer = "SynthRad (synthetic phantom)"
    ds.PatientName = identity.patient_name
    ds.PatientID = identity.patient_id
    ds.PatientBirthDate = identity.birth_date.strftime("%Y%m%d")
    ds.PatientSex = sex
    age = int((when.date() - identity.birth_date).days // 365.25)
    ds.PatientAge = f"{min(age, 999):03d}Y"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = style.view
    ds.PatientOrientation = ["L", "F"]  # patient's right on the image left
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BurnedInAnnotation = "NO"
    rows = pixels.shape[0]
    spacing = f"{430.0 / rows:.4f}"
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.KVP = "110" if style.view == "PA" else "90"
    if style.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
    stored = stored_pixels(pixels, style)
    ds.set_pixel_data(stored, style.photometric, 12, generate_instance_uid=False)
    ds.RescaleSlope = f"{style.slope:g}"
    ds.RescaleIntercept = f"{style.intercept:g}"
    ds.RescaleType = "US"
    c, w, lc, lw = _window(stored, style)
    if style.two_windows:
        ds.WindowCenter = [f"{c:.0f}", f"{lc:.0f}"]
        ds.WindowWidth = [f"{w:.0f}", f"{lw:.0f}"]
        ds.WindowCenterWidthExplanation = ["DEFAULT", "LUNG"]
    else:
        ds.WindowCenter = f"{c:.0f}"
        ds.WindowWidth = f"{w:.0f}"
    ds.VOILUTFunction = "LINEAR"
    if style.transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(style.transfer_syntax, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    return ds


def write_dicom(ds: Dataset, path: Path) -> None:
    """Save `ds` as a DICOM Part 10 file."""
    ds.save_as(path, enforce_file_format=True)

