"""`moe-app check-heatmaps`: measure where the image heatmaps fall on a synthetic set."""

from __future__ import annotations

from pathlib import Path

import typer


def check_heatmaps(
    data: Path = typer.Option(..., help="A synthetic set: case folders and manifest.csv."),
    model: Path = typer.Option(Path("assets/model"), help="The trained model folder."),
    split: str = typer.Option("test", help="Which split of the set to measure."),
    target: str = typer.Option("predicted", help='"predicted" (as the UI shows) or a diagnosis label.'),
    limit: int = typer.Option(0, help="At most this many pneumothorax cases (0 = all)."),
    cross_modal: bool = typer.Option(False, help="Also count the cross-modal expert's heatmap."),
    method: str = typer.Option("hirescam", help='Heatmap method: "hirescam" (as the UI shows) or "gradcam".'),
) -> None:
    """Share of heatmap mass on the hemithorax where the generator drew the pneumothorax (target >= 0.7)."""
    from moe_app.errors import MoeAppError
    from moe_app.explain.check_heatmaps import measure

    try:
        result = measure(model, data, split=split, target=target, limit=limit or None,
                         include_cross_modal=cross_modal, method=method)
    except MoeAppError as exc:
        typer.echo(f"Cannot measure: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(result.report())


def register(app: typer.Typer) -> None:
    app.command("check-heatmaps")(check_heatmaps)
