"""The hash chain: canonical serialisation, hashing, verification and checkpoints (pure code).

Each record's hash is SHA-256 over the canonical serialisation of its fields, including its
sequence number, its UTC time and the previous record's hash, so changing, deleting,
inserting or reordering any record breaks the chain at that record. The first record's
`prev_hash` is `GENESIS_HASH`. A checkpoint (count and head hash kept outside the database)
additionally catches truncation of the tail and a wholesale rewrite of the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moe_app.errors import AuditError

GENESIS_HASH = "0" * 64

# The fields covered by the hash, in the stored record. `payload` is the canonical JSON text.
HASHED_FIELDS: tuple[str, ...] = (
    "seq", "time", "action", "type_code", "subtype_code", "action_code", "actor", "actor_role",
    "client_address", "outcome", "outcome_description", "case_pseudonym", "model_version",
    "model_weights_sha256", "runtime", "source_site", "app_version", "payload", "prev_hash",
)  # fmt: skip


def canonical_json(value: Any) -> str:
    """Sorted-key, compact, UTF-8 JSON; refuses NaN/inf so the text is the same everywhere."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise AuditError(f"Audit payload is not plain JSON ({exc}).") from None


def iso_utc(time: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`, e.g. 2026-01-02T03:04:05.000006Z."""
    if time.tzinfo is None:
        raise AuditError("Audit times must be timezone-aware (UTC).")
    return time.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def record_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical serialisation of one record's hashed fields.

    Args:
        fields: at least `HASHED_FIELDS`; `time` a tz-aware datetime, `payload` JSON text.
    """
    body = {name: fields[name] for name in HASHED_FIELDS}
    body["time"] = iso_utc(body["time"])
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """The chain's length and head hash at a moment, kept outside the database."""

    count: int
    head_hash: str
    time: datetime

    def to_json(self) -> str:
        return json.dumps(
            {"count": self.count, "head_hash": self.head_hash, "time": iso_utc(self.time)},
            indent=2,
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        """Read a checkpoint file written by `save` (or `moe-app audit checkpoint`).

        Raises:
            AuditError: the file is missing or is not a checkpoint.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            time = datetime.fromisoformat(data["time"].replace("Z", "+00:00"))
            checkpoint = cls(int(data["count"]), str(data["head_hash"]), time)
        except OSError as exc:
            raise AuditError(f"Cannot read the checkpoint file {path}: {exc.strerror}.") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AuditError(f"{path} is not an audit checkpoint file.") from None
        if checkpoint.count < 0 or len(checkpoint.head_hash) != 64:
            raise AuditError(f"{path} is not an audit checkpoint file.")
        return checkpoint


@dataclass(frozen=True)
class VerifyResult:
    """What verification found. `first_bad_seq` names the first record that does not verify."""

    ok: bool
    count: int  # records read
    head_hash: str  # hash of the last record read (GENESIS_HASH when empty)
    first_bad_seq: int | None = None
    reason: str = ""


def verify_records(
    records: Iterable[Mapping[str, Any]], checkpoint: Checkpoint | None = None
) -> VerifyResult:
    """Recompute the chain over records in `seq` order and stop at the first bad one.

    Args:
        records: mappings with `id`, `hash` and `HASHED_FIELDS`, ordered by `seq`.
        checkpoint: when given, the chain must still contain the checkpointed head.
    """
    expected_seq, prev_hash, last_id = 1, GENESIS_HASH, None
    checkpoint_seen = checkpoint is None or checkpoint.count == 0
    for rec in records:
        seq = rec["seq"]
        if seq != expected_seq:
            what = "is missing" if seq > expected_seq else "appears twice or out of order"
            return _bad(expected_seq - 1, prev_hash, expected_seq, f"record {expected_seq} {what}")
        if last_id is not None and rec["id"] <= last_id:
            return _bad(seq - 1, prev_hash, seq, f"record {seq} was stored out of order")
        if rec["prev_hash"] != prev_hash:
            return _bad(seq - 1, prev_hash, seq, f"record {seq} does not link to record {seq - 1}")
        if record_hash(rec) != rec["hash"]:
            return _bad(seq - 1, prev_hash, seq, f"record {seq} was changed after it was written")
        if checkpoint is not None and seq == checkpoint.count:
            if rec["hash"] != checkpoint.head_hash:
                reason = f"record {seq} differs from the checkpoint: the chain was rewritten"
                return _bad(seq, rec["hash"], seq, reason)
            checkpoint_seen = True
        expected_seq, prev_hash, last_id = seq + 1, rec["hash"], rec["id"]
    count = expected_seq - 1
    if not checkpoint_seen:
        assert checkpoint is not None
        reason = (
            f"the log ends at record {count} but the checkpoint of {iso_utc(checkpoint.time)} "
            f"had {checkpoint.count}: records were removed from the end"
        )
        return _bad(count, prev_hash, count + 1, reason)
    return VerifyResult(ok=True, count=count, head_hash=prev_hash)


def _bad(count: int, head: str, seq: int, reason: str) -> VerifyResult:
    return VerifyResult(ok=False, count=count, head_hash=head, first_bad_seq=seq, reason=reason)
