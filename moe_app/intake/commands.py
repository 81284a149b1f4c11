"""`moe-app inspect PATH`: what intake makes of a case, without any patient identifier."""

from __future__ import annotations

from pathlib import Path

import typer


def inspect(
    path: Path = typer.Argument(..., help="A case folder, a DICOM file or a .zip of a case."),
) -> None:
    """Load a case as the app would and print a PHI-free summary (exit code 2 if it cannot be read)."""
    from moe_app.config import load_config
    from moe_app.deid import load_or_create_key
    from moe_app.errors import CaseError, ConfigError
    from moe_app.intake import load_case_folder, load_upload

    try:
        key = load_or_create_key(load_config().paths.pseudonym_key_file)
        if path.is_dir():
            case = load_case_folder(path, key=key)
        else:
            case = load_upload([path], report_text=None, vitals=None, key=key, case_id=path.stem)
    except (CaseError, ConfigError) as exc:
        typer.echo(f"Cannot read this case: {exc}", err=True)
        raise typer.Exit(code=2) from None
    present = [name for name, there in case.modalities.items() if there]
    typer.echo(f"case: {case.case_id}")
    typer.echo(f"pseudonym: {case.pseudonym}")
    typer.echo(f"modalities: {', '.join(present) or 'none'}")
    if case.image is not None:
        image = case.image
        typer.echo(f"picked series: {image.series_description}")
        typer.echo(f"series in upload: {image.n_series}")
        typer.echo(f"transfer syntax: {image.transfer_syntax}")
        typer.echo(f"photometric: {image.photometric}")
        typer.echo(
            f"frames: {len(image.frames)}; model input {image.model_input.shape[1]} x {image.model_input.shape[0]}"
        )
        typer.echo(f"windows: {', '.join(w.name for w in image.windows)}")
    if case.report is not None:
        typer.echo(f"report: {len(case.report)} characters (identifiers scrubbed)")
    if case.vitals or case.sex:
        typer.echo(
            f"vitals: {', '.join(sorted(case.vitals or {}))}{'; sex given' if case.sex else ''}"
        )
    for warning in case.warnings:
        typer.echo(f"warning: {warning}")


def register(app: typer.Typer) -> None:
    """Add the intake commands to the `moe-app` CLI."""
    app.command("inspect")(inspect)
