"""The `moe-app` command line: thin wrappers over the stages, one sub-command each.

Each stage registers its own commands from a `commands.py` next to it, so this file
stays a table of contents. Heavy imports (torch, gradio) happen inside the commands.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="moe-app",
    help="Multimodal Mixture-of-Experts diagnostic workstation (synthetic demo, not for clinical use).",
    no_args_is_help=True,
    add_completion=False,
)

# Modules that define `register(app: typer.Typer) -> None`.
_COMMAND_MODULES: tuple[str, ...] = (
    "moe_app.intake.commands",
    "moe_app.synth.commands",
    "moe_app.ui.commands",
    "moe_app.audit.commands",
    "moe_app.model.commands",
    "moe_app.runtime.commands",
    "moe_app.explain.commands",
)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


@app.command()
def version() -> None:
    """Print the app version."""
    from moe_app import __version__

    typer.echo(__version__)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
