"""`moe-app audit ...`: verify, export, checkpoint and list the audit log (each one audited).

The store is the one named by MOE_APP_DATABASE_URL (see moe_app.config); the acting user is
the operating-system user, with role "operator" and client address "cli".
"""

from __future__ import annotations

import getpass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from moe_app.audit import Actor, AuditStore

audit_app = typer.Typer(help="Inspect, verify and export the tamper-evident audit log.",
                        no_args_is_help=True)  # fmt: skip


def _operator() -> Actor:
    from moe_app.audit import Actor

    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown-operator"
    return Actor(name=name, role="operator", client_address="cli")


def _open() -> AuditStore:
    from moe_app.audit import AuditStore
    from moe_app.config import load_config
    from moe_app.errors import MoeAppError

    try:
        return AuditStore.open(load_config().database_url)
    except MoeAppError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


@audit_app.command("verify")
def verify(
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Checkpoint file from `moe-app audit checkpoint`."
    ),
) -> None:
    """Recompute the hash chain; exit 1 naming the first bad record if it does not verify."""
    from moe_app.audit import Checkpoint
    from moe_app.errors import MoeAppError

    with _open() as store:
        try:
            cp = Checkpoint.load(checkpoint) if checkpoint else None
            result = store.verify(cp, actor=_operator())
        except MoeAppError as exc:
            raise _fail(str(exc)) from None
    if result.ok:
        against = f", matches checkpoint of {cp.count} records" if cp else ""
        typer.echo(f"OK: {result.count} records verify{against}; head {result.head_hash}")
        return
    typer.echo(f"TAMPERED: first bad record {result.first_bad_seq}: {result.reason}", err=True)
    raise typer.Exit(1)


@audit_app.command("export")
def export(
    fmt: str = typer.Option(..., "--format", help="fhir (R4 Bundle of AuditEvents) or csv."),
    out: Path = typer.Option(..., "--out", help="File to write."),
) -> None:
    """Write every event as FHIR AuditEvent resources or CSV."""
    from moe_app.errors import MoeAppError

    if fmt not in ("fhir", "csv"):
        raise _fail(f"--format must be fhir or csv, not {fmt!r}.")
    with _open() as store:
        try:
            writer = store.export_fhir if fmt == "fhir" else store.export_csv
            count = writer(out, actor=_operator())
        except MoeAppError as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"Exported {count} events to {out}")


@audit_app.command("checkpoint")
def checkpoint(
    out: Path | None = typer.Option(
        None, "--out", help="File to write (keep it outside the database); printed if omitted."
    ),
) -> None:
    """Record the chain's length and head hash, to detect truncation or rewriting later."""
    from moe_app.errors import MoeAppError

    with _open() as store:
        try:
            cp = store.checkpoint(actor=_operator())
        except MoeAppError as exc:
            raise _fail(str(exc)) from None
    if out is None:
        typer.echo(cp.to_json())
        return
    try:
        cp.save(out)
    except OSError as exc:
        raise _fail(f"Cannot write {out}: {exc.strerror}.") from None
    typer.echo(f"Checkpoint of {cp.count} records written to {out}")


@audit_app.command("list")
def list_events(
    action: str | None = typer.Option(None, help="e.g. prediction.made"),
    actor: str | None = typer.Option(None, help="User name."),
    pseudonym: str | None = typer.Option(None, help="Case pseudonym."),
    since: datetime | None = typer.Option(None, help="From this UTC time (inclusive)."),
    until: datetime | None = typer.Option(None, help="Before this UTC time."),
    text: str | None = typer.Option(None, help="Substring of action, user, outcome or payload."),
    limit: int = typer.Option(50, min=1, max=10_000),
    offset: int = typer.Option(0, min=0),
) -> None:
    """Show events, newest first (the viewing itself is recorded)."""
    from datetime import UTC

    from moe_app.audit import EventFilter

    def utc(value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    from moe_app.errors import MoeAppError

    flt = EventFilter(action, actor, pseudonym, utc(since), utc(until), text)
    with _open() as store:
        try:
            events = store.list_events(_operator(), flt, limit=limit, offset=offset)
        except MoeAppError as exc:
            raise _fail(str(exc)) from None
    for e in events:
        typer.echo(
            f"{e.seq:>7}  {e.time:%Y-%m-%d %H:%M:%S}Z  {e.action:<18} outcome={e.outcome:<2} "
            f"{e.actor:<16} {e.case_pseudonym or '-':<20} {e.outcome_description}"
        )
    typer.echo(f"{len(events)} events shown")


def register(app: typer.Typer) -> None:
    """Add the `audit` command group to the `moe-app` CLI."""
    app.add_typer(audit_app, name="audit")
