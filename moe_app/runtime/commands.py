"""`moe-app export`, `moe-app predict` and `moe-app bench`: thin wrappers over the runtime."""

from __future__ import annotations

import getpass
import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from moe_app.pipeline import Actor, Pipeline

log = logging.getLogger(__name__)

CASE_FILES = ("report.txt", "vitals.json")
DICOM_SUFFIXES = (".dcm", ".dicom")


def _looks_like_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with path.open("rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def is_case_folder(folder: Path) -> bool:
    """A case folder directly holds report.txt, vitals.json or a DICOM file."""
    try:
        files = [p for p in folder.iterdir() if p.is_file()]
    except OSError:  # unreadable: intake will say so
        return True
    return any(p.name in CASE_FILES for p in files) or any(_looks_like_dicom(p) for p in files)


def find_cases(paths: list[Path]) -> list[Path]:
    """Expand each PATH: a case folder stays itself; any other folder gives its subfolders."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir() and not is_case_folder(path):
            subs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
            out.extend(subs or [path])  # an empty folder goes to intake, which explains the problem
        else:
            out.append(path)  # a case folder, or a missing path intake will reject clearly
    return out


def cli_actor() -> Actor:
    from moe_app.pipeline import Actor

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(name=f"cli:{user}", role="clinician", client_address="cli")


def _diagnose(pipeline: Pipeline, folder: Path, actor: Actor, top_k: int | None) -> dict[str, Any]:
    """Intake, model and audit of one case -> its JSON line; `latency_ms` runs from the start of intake."""
    from moe_app.errors import MoeAppError

    started = time.perf_counter()
    try:
        try:
            case = pipeline.load_folder(folder)
        except MoeAppError as exc:
            pipeline.record_failure(actor, exc)
            raise
        # The pipeline records model failures itself.
        return pipeline.diagnose(case, actor, top_k=top_k, started=started).prediction.to_json()
    except MoeAppError as exc:
        return {"case": folder.name, "error": str(exc)}
    except Exception as exc:  # a bug must not stop the other cases; its text may hold PHI
        log.error("unexpected %s on a case:\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
        error = MoeAppError(f"unexpected {type(exc).__name__} while processing this case; see the app log")
        pipeline.record_failure(actor, error)
        return {"case": folder.name, "error": str(error)}


def predict(
    paths: list[Path] = typer.Argument(..., help="Case folders, or folders of case folders."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per case and line."),
    runtime: str = typer.Option("auto", "--runtime", help="onnx, torch, or auto (ONNX if possible)."),
    top_k: int | None = typer.Option(None, "--top-k", min=1, help="Experts per case (default: the model's)."),
    no_audit: bool = typer.Option(False, "--no-audit", help="Do not record predictions in the audit store."),
) -> None:
    """Diagnose cases with the local model (exit code 1 if any case failed, 2 if nothing could run)."""
    from moe_app.config import load_config
    from moe_app.errors import MoeAppError
    from moe_app.pipeline import Pipeline

    try:
        pipeline = Pipeline.from_config(load_config(), runtime=runtime, with_audit=not no_audit)
    except MoeAppError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    actor = cli_actor()
    rows: list[dict[str, Any]] = []
    failed = 0
    for folder in find_cases(paths):
        row = _diagnose(pipeline, folder, actor, top_k)
        failed += "error" in row
        if as_json:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        rows.append(row)
    if not as_json:
        from rich.console import Console

        from moe_app.runtime.tables import predictions_table

        console = Console(width=max(Console().width, 120))
        console.print(predictions_table(rows, runtime=pipeline.predictor.runtime,
                                        model_version=pipeline.predictor.model_version))
        for row in rows:
            if "error" in row:
                console.print(f"[red]{row['case']}[/red]: {row['error']}", markup=True, highlight=False)
    if failed:
        raise typer.Exit(1)


def export(
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Default: MOE_APP_MODEL_DIR."),
    out: Path | None = typer.Option(None, "--out", help="Default: <model-dir>/onnx."),
) -> None:
    """Export the gate and every expert as ONNX graphs, with a manifest (versions, hashes)."""
    from moe_app.config import load_config
    from moe_app.errors import MoeAppError
    from moe_app.model import load_model
    from moe_app.runtime.export import GRAPHS_DIR, export_graphs

    model_dir = model_dir or load_config().paths.model_dir
    try:
        manifest = export_graphs(load_model(model_dir), out or model_dir / GRAPHS_DIR)
    except MoeAppError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    from rich.console import Console

    from moe_app.runtime.tables import manifest_table

    Console().print(manifest_table(manifest, out or model_dir / GRAPHS_DIR))


def bench(
    out: Path = typer.Option(Path("bench/results.json"), "--out", help="Where to write the JSON results."),
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Default: MOE_APP_MODEL_DIR."),
    provider: str = typer.Option("auto", "--provider", help="auto, cpu or cuda (ONNX Runtime)."),
    repeats: int = typer.Option(30, "--repeats", min=3, help="Timed runs per measurement."),
) -> None:
    """Measure intake, gate/expert and end-to-end latency, throughput and memory (prints a table)."""
    from moe_app.config import load_config
    from moe_app.errors import MoeAppError
    from moe_app.runtime.bench import run_bench

    config = load_config()
    try:
        run_bench(model_dir or config.paths.model_dir, out=out, provider=provider, repeats=repeats,
                  cases_dir=config.paths.sample_cases_dir)
    except MoeAppError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add the runtime commands to the `moe-app` CLI."""
    app.command("export")(export)
    app.command("predict")(predict)
    app.command("bench")(bench)
