"""The hash chain as pure code: canonical form, hashing, verification, checkpoints."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from moe_app.audit.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    Checkpoint,
    canonical_json,
    iso_utc,
    record_hash,
    verify_records,
)
from moe_app.errors import AuditError

T0 = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def make_chain(n: int) -> list[dict]:
    records, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        rec = {name: None for name in HASHED_FIELDS}
        rec.update(seq=seq, time=T0 + timedelta(seconds=seq), action="case.submitted",
                   actor="dr", outcome=0, payload=canonical_json({"i": seq}), prev_hash=prev)  # fmt: skip
        rec["hash"] = record_hash(rec)
        rec["id"] = seq * 10
        records.append(rec)
        prev = rec["hash"]
    return records


def test_canonical_json_is_key_order_independent_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [1.5, "é"]}) == canonical_json({"a": [1.5, "é"], "b": 1})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, {1, 2}, b"bytes"])
def test_canonical_json_refuses_non_json(bad: object) -> None:
    with pytest.raises(AuditError):
        canonical_json({"x": bad})


def test_iso_utc_normalises_offsets_and_refuses_naive_times() -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert iso_utc(plus_two) == iso_utc(T0) == "2026-01-02T03:04:05.000006Z"
    with pytest.raises(AuditError):
        iso_utc(T0.replace(tzinfo=None))


@pytest.mark.parametrize("field", HASHED_FIELDS)
def test_every_hashed_field_changes_the_hash(field: str) -> None:
    rec = make_chain(1)[0]
    changed = dict(rec)
    changed[field] = T0 + timedelta(microseconds=1) if field == "time" else "x"
    assert record_hash(changed) != record_hash(rec)


def test_intact_chain_verifies() -> None:
    chain = make_chain(5)
    result = verify_records(chain)
    assert (result.ok, result.count, result.head_hash) == (True, 5, chain[-1]["hash"])
    assert verify_records([]).ok and verify_records([]).head_hash == GENESIS_HASH


def _edit(c: list[dict]) -> list[dict]:
    c[2]["actor"] = "mallory"
    return c


def _edit_rehash(c: list[dict]) -> list[dict]:
    c[2]["actor"] = "mallory"
    c[2]["hash"] = record_hash(c[2])
    return c


def _delete(c: list[dict]) -> list[dict]:
    return c[:2] + c[3:]


def _duplicate(c: list[dict]) -> list[dict]:
    return c[:3] + [dict(c[2], id=c[2]["id"] + 1)] + c[3:]


def _swap_ids(c: list[dict]) -> list[dict]:
    c[2]["id"], c[3]["id"] = c[3]["id"], c[2]["id"]
    return c


def _relink(c: list[dict]) -> list[dict]:
    c[2]["prev_hash"] = GENESIS_HASH
    return c


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [(_edit, 3), (_edit_rehash, 4), (_delete, 3), (_duplicate, 4), (_swap_ids, 4), (_relink, 3)],
)
def test_tampering_names_first_bad_record(tamper, first_bad: int) -> None:  # noqa: ANN001
    result = verify_records(tamper(make_chain(6)))
    assert not result.ok
    assert result.first_bad_seq == first_bad
    assert str(first_bad) in result.reason


def test_checkpoint_catches_truncation_and_rewrite() -> None:
    chain = make_chain(6)
    cp = Checkpoint(count=5, head_hash=chain[4]["hash"], time=T0)
    assert verify_records(chain, cp).ok
    truncated = verify_records(chain[:3], cp)
    assert not truncated.ok and truncated.first_bad_seq == 4 and "removed" in truncated.reason
    assert verify_records(chain[:3]).ok  # without a checkpoint truncation is invisible
    rewritten = make_chain(6)
    for rec in rewritten:  # a consistent, fully re-hashed forgery
        rec["actor"] = "mallory"
    prev = GENESIS_HASH
    for rec in rewritten:
        rec["prev_hash"] = prev
        rec["hash"] = prev = record_hash(rec)
    assert verify_records(rewritten).ok
    result = verify_records(rewritten, cp)
    assert not result.ok and result.first_bad_seq == 5 and "rewritten" in result.reason


def test_checkpoint_file_round_trip(tmp_path: Path) -> None:
    cp = Checkpoint(count=7, head_hash="a" * 64, time=T0)
    cp.save(tmp_path / "cp.json")
    assert Checkpoint.load(tmp_path / "cp.json") == cp


@pytest.mark.parametrize(
    "content", ["", "not json", '{"count": 1}', '{"count": -1, "head_hash": "", "time": "x"}', "[]"]
)
def test_checkpoint_load_refuses_bad_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cp.json"
    path.write_text(content)
    with pytest.raises(AuditError, match="not an audit checkpoint"):
        Checkpoint.load(path)


def test_checkpoint_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="Cannot read"):
        Checkpoint.load(tmp_path / "nope.json")
