"""`moe-app synth`: write a synthetic set, check that it needs every modality, or the samples."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer


def synth(
    n: int = typer.Option(5000, "--n", min=1, help="Number of cases."),
    seed: int = typer.Option(0, "--seed", help="Set seed (same seed, same files)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder for case folders and manifest.csv."),
    image_size: int = typer.Option(512, "--image-size", min=32, max=2048, help="Film rows = columns."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes."),
    check: bool = typer.Option(False, "--check", help="Train quick per-modality baselines and print their accuracy."),
    data: Path | None = typer.Option(None, "--data", help="With --check: an existing set to check instead of generating one."),
    json_out: Path | None = typer.Option(None, "--json", help="With --check: also write the result as JSON here."),
    samples: Path | None = typer.Option(None, "--samples", help="Write the curated sample cases to this folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Generate synthetic multimodal chest cases (invented patients; not for clinical use).

    Exit code 1 when --check finds the set outside its bounds (a single modality above 0.80 accuracy, or the combined baseline below 0.95).
    """
    from moe_app.synth.dataset import generate_dataset
    from moe_app.synth.generate import SynthConfig

    cfg = SynthConfig(image_size=image_size)
    if samples is not None:
        from moe_app.synth.samples import build_samples

        folders = build_samples(samples)
        typer.echo(f"wrote {len(folders)} sample cases to {samples}")
        return
    if check:
        if data is None:
            with tempfile.TemporaryDirectory(prefix="moe-synth-check-") as tmp:
                generate_dataset(Path(tmp), n, seed, cfg, workers=workers, progress=progress)
                _check(Path(tmp), workers, json_out)
        else:
            _check(data, workers, json_out)
        return
    if out is None:
        typer.echo("Give --out DIR (where to write the cases), or use --check / --samples.", err=True)
        raise typer.Exit(code=2)
    manifest = generate_dataset(out, n, seed, cfg, workers=workers, progress=progress)
    typer.echo(f"wrote {n} cases and {manifest}")


def _check(data: Path, workers: int, json_out: Path | None) -> None:
    from rich.console import Console

    from moe_app.synth.check import check_table, load_rows, run_check

    if not (data / "manifest.csv").is_file():
        typer.echo(f"{data} has no manifest.csv: is it a folder written by `moe-app synth`?", err=True)
        raise typer.Exit(code=2)
    result = run_check(load_rows(data, workers))
    console = Console(width=140)
    console.print(check_table(result))
    payload = {**result.to_dict(), "violations": result.violations()}
    text = json.dumps(payload, indent=2)
    typer.echo(text)
    if json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")
    if payload["violations"]:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the synth command to the `moe-app` CLI."""
    app.command("synth")(synth)
