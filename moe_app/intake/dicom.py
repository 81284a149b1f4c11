"""Reading one DICOM file with pydicom: detect by content, parse, check size, decode frames.

Every pydicom/numpy failure is turned into a `CaseError` whose message says what is
wrong in plain words. Pixel data is decoded one frame at a time through pydicom's
decoders (pylibjpeg plugins for JPEG, JPEG-LS, JPEG 2000, HTJ2K and RLE), after the
header's dimensions have been checked against `IntakeLimits`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import as_pixel_options
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from moe_app.config import IntakeLimits
from moe_app.errors import CaseError

# pydicom's read-time validation logs offending values (which may be identifiers);
# intake reports problems itself, in words without values.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

PIXEL_KEYWORDS: tuple[str, ...] = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG photo"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"{", "a JSON or text file"),
)
# Groups a header-less (raw implicit VR) DICOM dataset plausibly starts with.
_FIRST_GROUPS = frozenset({0x0002, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028})


def describe_content(head: bytes) -> str:
    """What a non-DICOM file looks like, for the error message."""
    if not head:
        return "an empty (zero-byte) file"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if b"\x00" not in head[:512]:
        return "a text file"
    return "an unknown kind of file"


def looks_like_dicom(head: bytes) -> bool:
    """True for a Part 10 file ('DICM' after the preamble) or a plausible raw dataset."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    return group in _FIRST_GROUPS


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return UID(str(ts).strip("\x00 "))
    implicit, little = ds.original_encoding
    if implicit is False and little is False:
        return ExplicitVRBigEndian
    return ImplicitVRLittleEndian if implicit in (True, None) else ExplicitVRLittleEndian


def parse(data: bytes, label: str) -> Dataset:
    """Parse one file's bytes into a Dataset (pixel data kept encoded, not decoded).

    Raises:
        CaseError: Not DICOM (says what it looks like), or truncated/damaged.
    """
    head = data[:1024]
    if not looks_like_dicom(head):
        raise CaseError(
            f"{label.capitalize()} is not a DICOM file (it looks like {describe_content(head)})."
        )
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        keys = [tag for tag in ds.keys() if tag.group >= 0x0008]  # noqa: SIM118 (iter yields elements)
        for keyword in ("Rows", "Columns", "SOPClassUID", "Modality"):
            ds.get(keyword)  # converts the raw values; damaged ones fail here
    except (Exception, MemoryError) as exc:  # pydicom raises many types on damaged files
        raise CaseError(
            f"{label.capitalize()} looks like DICOM but cannot be read: it is truncated or "
            f"damaged ({type(exc).__name__}). Export it again from the PACS."
        ) from None
    if not keys and head[128:132] == b"DICM":
        raise CaseError(
            f"{label.capitalize()} looks like DICOM but is truncated or damaged (it ends before "
            "its data). Export it again from the PACS."
        )
    if not keys:
        raise CaseError(f"{label.capitalize()} is not a DICOM file (it holds no DICOM elements).")
    if not hasattr(ds, "file_meta") or ds.file_meta is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = _transfer_syntax(ds)
    return ds


def has_pixels(ds: Dataset) -> bool:
    return any(keyword in ds for keyword in PIXEL_KEYWORDS)


def transfer_syntax_name(ds: Dataset) -> str:
    uid = _transfer_syntax(ds)
    return uid.name if uid.is_transfer_syntax else f"unknown transfer syntax {uid}"


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    try:
        value = ds.get(keyword, default)
        return default if value in (None, "") else int(value)
    except (TypeError, ValueError, OverflowError):
        return default


def number_of_frames(ds: Dataset) -> int:
    return max(1, _int(ds, "NumberOfFrames", 1) or 1)


def check_image(ds: Dataset, label: str, limits: IntakeLimits) -> None:
    """Refuse what cannot or should not be decoded, before touching the pixel data.

    Raises:
        CaseError: No pixel data, missing/absurd dimensions or frame count, or a transfer
            syntax this installation has no decoder for.
    """
    where = label.capitalize()
    if not has_pixels(ds):
        raise CaseError(
            f"{where} holds no image (no pixel data); it may be a report or a directory file."
        )
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    if not rows or not cols or rows < 0 or cols < 0:
        raise CaseError(
            f"{where} does not state a valid image size (Rows/Columns); the file is damaged."
        )
    if rows * cols > limits.max_pixels_per_frame:
        raise CaseError(
            f"{where} claims an image of {rows} x {cols} pixels, more than the limit of "
            f"{limits.max_pixels_per_frame:,} pixels per frame; the header is probably damaged."
        )
    frames = number_of_frames(ds)
    if frames > limits.max_frames:
        raise CaseError(
            f"{where} claims {frames} frames, more than the limit of {limits.max_frames}."
        )
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    bits = _int(ds, "BitsAllocated", 0) or 0
    if samples not in (1, 3) or bits not in (1, 8, 16, 32, 64):
        raise CaseError(
            f"{where} has an unsupported pixel layout ({samples} samples of {bits} bits)."
        )
    ts = _transfer_syntax(ds)
    name = transfer_syntax_name(ds)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise CaseError(
            f"{where} is compressed with {name}, which this installation cannot decode. "
            "Export it from the PACS uncompressed or as JPEG/JPEG 2000."
        ) from None
    if not decoder.is_available:
        raise CaseError(
            f"{where} is compressed with {name}, which this installation cannot decode "
            "(the decoder plugin is not installed). Ask the administrator, or export it uncompressed."
        )


def iter_frames(
    ds: Dataset, label: str, indices: Sequence[int] | None = None
) -> Iterator[tuple[np.ndarray, str]]:
    """Decode frames one at a time; yields (frame, photometric interpretation after decoding).

    `indices` selects frames (0-based, default all); only those are decoded.

    A frame is (rows, columns) or (rows, columns, samples). YBR_FULL/YBR_FULL_422 come back
    as RGB from pydicom (the returned photometric says so).
    """
    decoder = get_decoder(_transfer_syntax(ds))
    try:
        options = as_pixel_options(ds)
    except (Exception, MemoryError) as exc:
        raise CaseError(
            f"{label.capitalize()} has damaged image attributes ({type(exc).__name__})."
        ) from None
    for index in range(number_of_frames(ds)) if indices is None else indices:
        try:
            frame, props = decoder.as_array(ds, index=index, validate=True, raw=False, **options)
        except (Exception, MemoryError) as exc:
            raise CaseError(
                f"{label.capitalize()}: frame {index + 1} cannot be decoded with "
                f"{transfer_syntax_name(ds)} ({type(exc).__name__}); the pixel data is truncated, "
                "damaged or in a variant this installation cannot decode. Export it again from the PACS."
            ) from None
        yield (
            frame,
            str(props.get("photometric_interpretation", ds.get("PhotometricInterpretation", ""))),
        )
