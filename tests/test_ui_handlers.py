"""Plain helpers behind the UI events (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

from moe_app.labels import VITALS
from moe_app.ui.handlers import UNKNOWN_SEX, read_sample, remove_uploads, vitals_from_fields


def test_sample_report_is_scrubbed_before_it_reaches_the_form(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    (case / "report.txt").write_text("No PTX. Reported by Dr Jane Whitlock on 12/03/2021, MRN 99887766.\n")
    (case / "vitals.json").write_text(json.dumps({"heart_rate_bpm": 101, "sex": "F"}))
    report, values, sex = read_sample(case)
    assert "Whitlock" not in report and "99887766" not in report and "12/03/2021" not in report
    assert "No PTX" in report
    assert values[[v.key for v in VITALS].index("heart_rate_bpm")] == 101
    assert sex == "F"


def test_form_fields_become_the_intake_vitals_mapping() -> None:
    values: list[float | None] = [None] * len(VITALS)
    values[1] = 88.0
    assert vitals_from_fields(values, UNKNOWN_SEX) == {VITALS[1].key: 88.0}
    assert vitals_from_fields(values, "M")["sex"] == "M"
    assert vitals_from_fields([None] * len(VITALS), None) == {}


def test_remove_uploads_deletes_files_and_their_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "upload-123"
    folder.mkdir()
    f = folder / "a.dcm"
    f.write_bytes(b"x")
    remove_uploads([str(f)])
    assert not f.exists() and not folder.exists()


def test_audit_date_filters_parse_or_explain() -> None:
    from datetime import UTC, datetime

    import pytest

    from moe_app.errors import CaseError
    from moe_app.ui.events import _day

    assert _day("", "From") is None
    assert _day("2026-11-29", "From") == datetime(2026, 11, 29, tzinfo=UTC)
    assert _day("2026-11-29", "Until", next_day=True) == datetime(2026, 11, 30, tzinfo=UTC)
    with pytest.raises(CaseError, match="Until must be a date"):
        _day("29/11/2026", "Until")
