"""The free-text report: plain UTF-8 text within a size limit, nothing else."""

from __future__ import annotations

from pathlib import Path

from moe_app.config import IntakeLimits
from moe_app.errors import CaseError
from moe_app.intake.dicom import describe_content

_ALLOWED_CONTROLS = frozenset("\t\n\r\f")


def _check_text(head: bytes) -> None:
    if b"\x00" in head:
        raise CaseError(
            f"The report is not plain text (it looks like {describe_content(head)}). "
            "Paste the report text, or upload it as a UTF-8 .txt file."
        )


def decode_report(data: bytes, limits: IntakeLimits = IntakeLimits()) -> str:
    """Validate and decode report bytes (see `read_report`)."""
    _check_text(data[:8192])
    if len(data) > limits.max_report_bytes:
        raise CaseError(
            f"The report is {len(data) / 1024:.0f} KB; the limit is "
            f"{limits.max_report_bytes / 1024:.0f} KB of plain text. Shorten it or attach only the findings."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaseError(
            f"The report is not UTF-8 text (invalid byte at position {exc.start}). "
            "Save it as UTF-8 plain text and try again."
        ) from None
    bad = sum(1 for ch in text if ch < " " and ch not in _ALLOWED_CONTROLS)
    if bad:
        raise CaseError(f"The report holds {bad} control characters; it is not plain text.")
    return text


def read_report(source: Path | bytes, limits: IntakeLimits = IntakeLimits()) -> str:
    """Read a report as UTF-8 text.

    Args:
        source: A file path or the file's bytes.
        limits: `max_report_bytes` bounds the size.

    Returns:
        The text (a UTF-8 byte-order mark is dropped).

    Raises:
        CaseError: The report is binary, not UTF-8, or larger than the limit. A large file is
            rejected from its first bytes and size without reading it whole.
    """
    if isinstance(source, bytes | bytearray):
        return decode_report(bytes(source), limits)
    try:
        with Path(source).open("rb") as fh:
            _check_text(fh.read(8192))
            fh.seek(0)
            data = fh.read(limits.max_report_bytes + 1)
    except OSError as exc:
        raise CaseError(
            f"The report file cannot be read ({exc.strerror or 'I/O error'})."
        ) from None
    return decode_report(data, limits)
