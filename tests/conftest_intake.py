"""Builders of small synthetic DICOM files for the intake and de-identification tests.

Imported by tests/test_intake_*.py and tests/test_deid*.py (not a pytest conftest).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def image_dataset(
    pixels: np.ndarray | None = None,
    *,
    modality: str = "CR",
    photometric: str = "MONOCHROME2",
    patient_id: str = "PAT-0001",
    study_uid: str = "1.2.826.0.1.3680043.8.498.1",
    series_uid: str = "1.2.826.0.1.3680043.8.498.2",
    instance_number: int | None = 1,
    view: str | None = "PA",
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
) -> Dataset:
    """A small valid image dataset (uint16 grey, or a (frames, H, W) stack) with file meta."""
    if pixels is None:
        pixels = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)  # (H, W)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sop_class = {"CR": CR_STORAGE, "CT": CT_STORAGE}.get(modality, SecondaryCaptureImageStorage)
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = patient_id
    ds.PatientName = "Test^Patient"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    if view is not None:
        ds.ViewPosition = view
    if instance_number is not None:
        ds.InstanceNumber = instance_number
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    ds.set_pixel_data(pixels, photometric, 16 if pixels.dtype.itemsize == 2 else 8)
    if pixels.ndim == 3 and photometric.startswith("MONO"):
        ds.NumberOfFrames = pixels.shape[0]
    return ds


def write_dicom(ds: Dataset, path: Path) -> Path:
    """Save as a DICOM Part 10 file (preamble + 'DICM')."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
