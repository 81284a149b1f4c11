"""Rich tables for the runtime commands (predictions, export manifest, benchmark)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from moe_app.labels import LABEL_TITLES


def predictions_table(rows: list[dict[str, Any]], *, runtime: str, model_version: str) -> Table:
    """One line per case: diagnosis, confidence, flag, experts with their weights, latency."""
    table = Table(title=f"Predictions · model {model_version} · {runtime}",
                  caption="Synthetic-data demo model, not for clinical use.")
    for col in ("Case", "Diagnosis", "p", "Uncertain", "Experts (gate weight)", "Inputs", "ms"):
        table.add_column(col, justify="right" if col in ("p", "ms") else "left")
    for row in rows:
        if "error" in row:
            table.add_row(row["case"], "[red]failed (see below)[/red]", "", "", "", "", "")
            continue
        label = row["diagnosis"]
        experts = ", ".join(f"{name} {row['gating'][name]:.2f}" for name in row["selected_experts"])
        inputs = ", ".join(m for m, present in row["modalities"].items() if present)
        table.add_row(row["case"], LABEL_TITLES.get(label, label), f"{row['probabilities'][label]:.2f}",
                      "[yellow]yes[/yellow]" if row["uncertain"] else "no", experts, inputs,
                      f"{row['latency_ms']:.0f}")
    return table


def manifest_table(manifest: dict[str, Any], folder: Path) -> Table:
    """The exported graphs with their exporter, size and hash."""
    v = manifest["versions"]
    table = Table(title=f"ONNX graphs in {folder} (opset {manifest['opset']})",
                  caption=f"weights sha256 {manifest['weights_sha256'][:16]}… · torch {v['torch']} · "
                          f"onnx {v['onnx']} · onnxruntime {v['onnxruntime']}")
    for col in ("Graph", "Inputs", "Exporter", "MB", "sha256"):
        table.add_column(col, justify="right" if col == "MB" else "left")
    for name, g in manifest["graphs"].items():
        size = (folder / g["file"]).stat().st_size / 1e6
        table.add_row(name, ", ".join(g["inputs"]), g["exporter"], f"{size:.2f}", g["sha256"][:16] + "…")
    return table


def bench_table(results: dict[str, Any]) -> Table:
    """The benchmark's figures, each with its target where the issue sets one."""
    table = Table(title=f"Inference benchmark · {results['machine']['summary']}",
                  caption=results["model"]["summary"])
    table.add_column("Measurement")
    table.add_column("Value", justify="right")
    table.add_column("Target", justify="right")
    table.add_column("Met", justify="center")
    for row in results["table"]:
        met = row.get("met")
        mark = "" if met is None else ("[green]yes[/green]" if met else "[red]no[/red]")
        table.add_row(row["name"], row["value"], row.get("target", ""), mark)
    return table
