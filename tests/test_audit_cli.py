"""`moe-app audit verify|export|checkpoint|list`, invoked as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from moe_app.audit import AuditStore, EventFilter
from moe_app.audit.commands import register
from tests.conftest_audit import CLINICIAN, audit_url, drop_triggers, fill, raw

__all__ = ["audit_url"]  # fixture used by name


@pytest.fixture
def cli(audit_url: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Invoke `moe-app <args>` against a fresh audit store; returns (invoke, store)."""
    monkeypatch.setenv("MOE_APP_DATABASE_URL", audit_url)
    app = typer.Typer()
    register(app)

    @app.command()
    def version() -> None:  # a second command keeps `audit` a sub-command, as in moe_app.cli
        """Print nothing."""

    runner = CliRunner()
    store = AuditStore.open(audit_url)
    yield (lambda *args: runner.invoke(app, list(args))), store
    store.close()


def test_cli_registers_audit_group() -> None:
    # Read, not imported: importing moe_app.cli loads every stage (torch included).
    source = (Path(__file__).resolve().parent.parent / "moe_app/cli.py").read_text()
    assert '"moe_app.audit.commands"' in source


def test_verify_ok_then_tampered(cli, tmp_path: Path) -> None:  # noqa: ANN001
    invoke, store = cli
    fill(store, 4)
    result = invoke("audit", "verify")
    assert result.exit_code == 0 and "OK: 4 records verify" in result.output
    drop_triggers(store)
    raw(store, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    result = invoke("audit", "verify")
    assert result.exit_code == 1 and "first bad record 2" in result.output


def test_checkpoint_file_then_verify_against_it(cli, tmp_path: Path) -> None:  # noqa: ANN001
    invoke, store = cli
    fill(store, 3)
    result = invoke("audit", "checkpoint", "--out", str(tmp_path / "cp.json"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cp.json").read_text())["count"] == 3
    printed = invoke("audit", "checkpoint")
    assert printed.exit_code == 0 and json.loads(printed.output)["count"] == 4
    ok = invoke("audit", "verify", "--checkpoint", str(tmp_path / "cp.json"))
    assert ok.exit_code == 0 and "matches checkpoint of 3" in ok.output
    drop_triggers(store)
    raw(store, "DELETE FROM audit_events WHERE seq >= 3")
    bad = invoke("audit", "verify", "--checkpoint", str(tmp_path / "cp.json"))
    assert bad.exit_code == 1 and "first bad record 3" in bad.output
    missing = invoke("audit", "verify", "--checkpoint", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2 and "Cannot read the checkpoint" in missing.output


@pytest.mark.parametrize("fmt", ["fhir", "csv"])
def test_export_writes_file_and_is_audited(cli, tmp_path: Path, fmt: str) -> None:  # noqa: ANN001
    invoke, store = cli
    fill(store, 2)
    result = invoke("audit", "export", "--format", fmt, "--out", str(tmp_path / "out"))
    assert result.exit_code == 0 and "Exported 2 events" in result.output
    assert (tmp_path / "out").stat().st_size > 0
    [event] = store.list_events(CLINICIAN, EventFilter(action="audit.exported"))
    assert event.actor_role == "operator" and event.client_address == "cli"


def test_export_refuses_unknown_format(cli, tmp_path: Path) -> None:  # noqa: ANN001
    invoke, _ = cli
    result = invoke("audit", "export", "--format", "xml", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "fhir or csv" in result.output


def test_list_filters_and_records_the_viewing(cli) -> None:  # noqa: ANN001
    invoke, store = cli
    fill(store, 3)
    result = invoke("audit", "list", "--pseudonym", "P-0001", "--limit", "10")
    assert result.exit_code == 0 and "P-0001" in result.output and "P-0002" not in result.output
    assert "1 events shown" in result.output
    assert len(store.list_events(CLINICIAN, EventFilter(action="audit.viewed"))) == 1


def test_bad_database_url_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOE_APP_DATABASE_URL", "mysql://u:secret@h/db")
    app = typer.Typer()
    register(app)
    app.command()(lambda: None)
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 2 and "SQLite and PostgreSQL" in result.output
    assert "secret" not in result.output


def test_every_command_and_option_is_documented() -> None:
    import moe_app.audit
    from moe_app.audit.commands import audit_app

    doc = moe_app.audit.__doc__ or ""
    for command in audit_app.registered_commands:
        name = command.name or ""
        assert f"moe-app audit {name}" in doc, name
    for option in ("--checkpoint", "--format", "--out", "--pseudonym", "--since", "--text"):
        assert option in doc, option
