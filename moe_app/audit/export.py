"""Exports of the whole log: a FHIR R4 Bundle of AuditEvents, or CSV; each audited."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from moe_app.audit import queries
from moe_app.audit.chain import GENESIS_HASH, canonical_json, iso_utc
from moe_app.audit.events import Actor, NewEvent, StoredEvent
from moe_app.audit.fhir import to_audit_event
from moe_app.errors import AuditError

if TYPE_CHECKING:
    from moe_app.audit.store import AuditStore

FORMATS = ("fhir", "csv")
CSV_COLUMNS: tuple[str, ...] = (
    "seq", "time", "action", "type_code", "subtype_code", "action_code", "outcome",
    "outcome_description", "actor", "actor_role", "client_address", "case_pseudonym",
    "model_version", "model_weights_sha256", "runtime", "source_site", "app_version",
    "payload", "prev_hash", "hash",
)  # fmt: skip
Output = str | Path | TextIO  # a file path, or an open text stream
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """CSV cell text; a leading formula character is quoted so spreadsheets do not run it."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_csv(events: Iterable[StoredEvent], out: TextIO) -> tuple[int, str]:
    """Write a header row and one row per event; returns (count, last hash)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count, last = 0, GENESIS_HASH
    for event in events:
        values = vars(event) | {
            "time": iso_utc(event.time),
            "payload": canonical_json(event.payload),
        }
        writer.writerow([_cell(values[name]) for name in CSV_COLUMNS])
        count, last = count + 1, event.hash
    return count, last


def write_fhir_bundle(events: Iterable[StoredEvent], out: TextIO) -> tuple[int, str]:
    """Stream a FHIR `collection` Bundle of AuditEvents; returns (count, last hash)."""
    out.write('{"resourceType":"Bundle","type":"collection"')
    count, last = 0, GENESIS_HASH
    for event in events:
        out.write(",\n" if count else ',"entry":[\n')  # FHIR JSON has no empty arrays
        entry = {"fullUrl": f"urn:uuid:{_uuid_for(event.hash)}", "resource": to_audit_event(event)}
        out.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))
        count, last = count + 1, event.hash
    out.write("\n]}\n" if count else "}\n")
    return count, last


def _uuid_for(digest: str) -> str:
    """A stable UUID-shaped id derived from the record hash (same record, same fullUrl)."""
    h = digest[:32]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class _HashingWriter:
    """Text sink that also hashes what was written (to record the export's digest)."""

    def __init__(self, inner: TextIO) -> None:
        self.inner, self.sha = inner, hashlib.sha256()

    def write(self, text: str) -> int:
        self.sha.update(text.encode("utf-8"))
        return self.inner.write(text)


@contextlib.contextmanager
def _open_out(out: Output) -> Iterator[TextIO]:
    if isinstance(out, str | Path):
        try:
            with open(out, "w", encoding="utf-8", newline="") as handle:
                yield handle
        except OSError as exc:
            raise AuditError(f"Cannot write the export to {out}: {exc.strerror}.") from None
    else:
        yield out


def export_to(store: AuditStore, fmt: str, out: Output, actor: Actor) -> int:
    """Export every event in `fmt` to `out`, then record `audit.exported`; returns the count."""
    if fmt not in FORMATS:
        raise AuditError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    writer_fn = write_fhir_bundle if fmt == "fhir" else write_csv
    with _open_out(out) as handle, store.read_session() as session:
        sink = _HashingWriter(handle)
        count, last = writer_fn(queries.iter_events(session), sink)  # type: ignore[arg-type]
    store.append(
        NewEvent(
            action="audit.exported",
            actor=actor.name,
            actor_role=actor.role,
            client_address=actor.client_address,
            outcome_description=f"exported {count} events as {fmt}",
            payload={
                "format": fmt,
                "count": count,
                "head_hash": last,
                "sha256": sink.sha.hexdigest(),
            },  # fmt: skip
        )
    )
    return count
