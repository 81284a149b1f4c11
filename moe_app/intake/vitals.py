"""Vitals and labs: validate `vitals.json` (or UI fields) against the shared schema."""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path

from moe_app.errors import CaseError
from moe_app.labels import SEX_KEY, SEX_VALUES, VITALS

_SPECS = {spec.key: spec for spec in VITALS}
_MAX_VITALS_BYTES = 64 * 1024


def _kind(value: object) -> str:
    """What a value is, without repeating it (it could be anything a user typed)."""
    if isinstance(value, bool):
        return "true/false"
    return "text" if isinstance(value, str) else f"a {type(value).__name__}"


def _number(key: str, value: object) -> float:
    spec = _SPECS[key]
    field = f"'{key}' ({spec.title}, {spec.unit})"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CaseError(f"Vitals field {field} must be a number, not {_kind(value)}.")
    try:
        number = float(value)
    except (OverflowError, ValueError):
        number = math.inf
    if not math.isfinite(number):
        raise CaseError(f"Vitals field {field} must be a finite number, not {number}.")
    if not spec.low <= number <= spec.high:
        raise CaseError(
            f"Vitals field {field} = {number:g} is outside the possible range "
            f"{spec.low:g} to {spec.high:g}; check the value and its unit."
        )
    return number


def _sex(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().upper() in SEX_VALUES:
        return value.strip().upper()
    raise CaseError(
        f"Vitals field '{SEX_KEY}' must be one of {', '.join(SEX_VALUES)}, not {_kind(value)}."
    )


def parse_vitals(data: Mapping[str, object]) -> tuple[dict[str, float], str | None]:
    """Validate vitals against `moe_app.labels.VITALS`.

    Args:
        data: Field name -> value. An absent field, or a null/None value, means "not measured".

    Returns:
        The numeric fields (in schema order) and the sex ("F"/"M") or None.

    Raises:
        CaseError: Naming the field, for an unknown field, a non-number (strings and booleans
            included), NaN/infinity, or a value outside the physiologically possible range.
    """
    if not isinstance(data, Mapping):
        raise CaseError(
            'Vitals must be a set of named fields (a JSON object), e.g. {"heart_rate_bpm": 88}.'
        )
    known = set(_SPECS) | {SEX_KEY}
    for key in data:
        if key not in known:
            raise CaseError(
                f"Unknown vitals field {str(key)[:40]!r}. Known fields: {', '.join(sorted(known))}."
            )
    values = {key: _number(key, data[key]) for key in _SPECS if data.get(key) is not None}
    return values, _sex(data.get(SEX_KEY))


def parse_vitals_json(text: str | bytes) -> tuple[dict[str, float], str | None]:
    """Parse vitals from JSON text (NaN/Infinity literals are reported per field)."""
    if len(text) > _MAX_VITALS_BYTES:
        raise CaseError("The vitals file is too large to be a vitals record (limit 64 KB).")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        where = (
            f" (line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise CaseError(f"The vitals are not valid JSON{where}.") from None
    return parse_vitals(data)


def read_vitals_file(path: Path) -> tuple[dict[str, float], str | None]:
    """Read and validate a `vitals.json` file."""
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(_MAX_VITALS_BYTES + 1)
    except OSError as exc:
        raise CaseError(
            f"The vitals file cannot be read ({exc.strerror or 'I/O error'})."
        ) from None
    return parse_vitals_json(raw)
