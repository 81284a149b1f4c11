"""Where a case's bytes come from: a folder, uploaded files, or the members of a zip.

Every input becomes a `Source` that reads its bytes on demand, within `IntakeLimits`.
Zip members are read straight from the archive into memory: nothing is ever extracted
to disk, so a hostile archive cannot write outside anything and leaves nothing behind.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from moe_app.config import IntakeLimits
from moe_app.errors import CaseError

REPORT_NAME = "report.txt"
VITALS_NAME = "vitals.json"


@dataclass(frozen=True)
class Source:
    """One input file. `label` names it for messages without showing a path or file name."""

    label: str  # e.g. "file 3 of 12"
    name: str  # base name, used only to recognise report.txt / vitals.json and to sort
    size: int
    read: Callable[[], bytes]  # the whole content; raises CaseError when unreadable
    in_archive: bool = False  # a zip member (read leniently, like a folder) or not


def _within_limit(data: bytes, limit: int, label: str) -> bytes:
    """`data` (read as `limit + 1` bytes at most) when it fits the per-file limit."""
    if len(data) > limit:
        raise CaseError(f"{label.capitalize()} is larger than the {limit // 1024**2} MB limit per file.")
    return data


def _file_reader(path: Path, limit: int, label: str) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            with path.open("rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise CaseError(
                f"{label.capitalize()} cannot be read ({exc.strerror or 'I/O error'})."
            ) from None
        return _within_limit(data, limit, label)

    return read


def _size(n: int) -> str:
    return f"{n / 1024**2:.0f} MB" if n >= 1024**2 else f"{n / 1024:.0f} kB"


def _check_totals(count: int, total: int, limits: IntakeLimits, what: str) -> None:
    if count > limits.max_files:
        raise CaseError(
            f"The {what} holds {count} files; the limit is {limits.max_files}. "
            "Load one study (or one series) at a time."
        )
    if total > limits.max_total_bytes:
        raise CaseError(
            f"The {what} holds {_size(total)}; the limit is {_size(limits.max_total_bytes)}. "
            "Load one study at a time."
        )


def folder_sources(folder: Path, limits: IntakeLimits) -> list[Source]:
    """Every regular file under `folder` (hidden files and symbolic links skipped), sorted."""
    paths: list[Path] = []
    for root, dirs, files in os.walk(folder):  # does not follow linked folders
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            path = Path(root) / name
            if not name.startswith(".") and not path.is_symlink() and path.is_file():
                paths.append(path)
                if len(paths) > limits.max_files:
                    _check_totals(len(paths), 0, limits, "case folder")
    paths.sort(key=lambda p: p.relative_to(folder).as_posix())
    sizes = [p.stat().st_size for p in paths]
    _check_totals(len(paths), sum(sizes), limits, "case folder")
    return [
        Source(
            f"file {i} of {len(paths)}",
            p.name,
            size,
            _file_reader(p, limits.max_file_bytes, f"file {i} of {len(paths)}"),
        )
        for i, (p, size) in enumerate(zip(paths, sizes, strict=True), start=1)
    ]


def _member_reader(
    archive: Path, info: zipfile.ZipInfo, limit: int, label: str
) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            with zipfile.ZipFile(archive) as zf, zf.open(info) as fh:
                data = fh.read(limit + 1)  # bounded even if the header lies about the size
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            RuntimeError,
            ValueError,
            NotImplementedError,
        ) as exc:
            raise CaseError(
                f"{label.capitalize()} cannot be unpacked ({type(exc).__name__}); the zip file may be damaged or encrypted."
            ) from None
        return _within_limit(data, limit, label)

    return read


def _unsafe_member(name: str) -> bool:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return ".." in parts


def zip_sources(archive: Path, limits: IntakeLimits, label: str) -> list[Source]:
    """The files inside a zip, checked before anything is read.

    Raises:
        CaseError: The archive is damaged, holds a member with an absolute path or `..`,
            or exceeds the file-count or size limits.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CaseError(
            f"{label.capitalize()} is not a readable zip file ({type(exc).__name__})."
        ) from None
    unsafe = [i for i in infos if _unsafe_member(i.filename)]
    if unsafe:
        raise CaseError(
            f"{label.capitalize()} was refused: {len(unsafe)} of its entries point outside the "
            "archive (absolute paths or '..'). Re-create the zip from the case folder."
        )
    members = [
        i
        for i in infos
        if not i.is_dir()
        and not PurePosixPath(i.filename).name.startswith(".")
        and not i.filename.startswith("__MACOSX/")
    ]
    members.sort(key=lambda i: i.filename)
    _check_totals(len(members), sum(i.file_size for i in members), limits, "zip file")
    n = len(members)
    return [
        Source(
            f"{label}, entry {k} of {n}",
            PurePosixPath(i.filename).name,
            i.file_size,
            _member_reader(archive, i, limits.max_file_bytes, f"{label}, entry {k} of {n}"),
            in_archive=True,
        )
        for k, i in enumerate(members, start=1)
    ]


def is_zip(path: Path) -> bool:
    """True when the file starts like a zip archive."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def upload_sources(files: list[Path], limits: IntakeLimits) -> Iterator[Source]:
    """Uploaded files in the given order, zips expanded into their members."""
    count, total = 0, 0
    for k, path in enumerate(files, start=1):
        label = f"uploaded file {k} of {len(files)}"
        if not path.is_file():
            raise CaseError(f"{label.capitalize()} cannot be found; upload it again.")
        if is_zip(path):
            members = zip_sources(path, limits, label)
        else:
            size = path.stat().st_size
            members = [
                Source(label, path.name, size, _file_reader(path, limits.max_file_bytes, label))
            ]
        count += len(members)
        total += sum(m.size for m in members)
        _check_totals(count, total, limits, "upload")
        yield from members
