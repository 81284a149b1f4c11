"""`moe-app serve` and `moe-app users add|remove|list`."""

from __future__ import annotations

import getpass

import typer


def register(app: typer.Typer) -> None:
    users = typer.Typer(help="Manage the web app's users (argon2-hashed passwords).", no_args_is_help=True)
    app.add_typer(users, name="users")

    @app.command()
    def serve(
        host: str = typer.Option(None, help="Address to listen on (default 127.0.0.1 or MOE_APP_HOST)."),
        port: int = typer.Option(None, help="Port (default 7860 or MOE_APP_PORT)."),
        runtime: str = typer.Option("auto", help="auto | onnx | torch"),
    ) -> None:
        """Start the web app (refuses a non-loopback address unless users are configured)."""
        import dataclasses
        import logging

        from moe_app.config import load_config
        from moe_app.errors import MoeAppError
        from moe_app.ui import serve as run

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        cfg = load_config()
        server = dataclasses.replace(cfg.server, host=host or cfg.server.host, port=port or cfg.server.port)
        try:
            run(dataclasses.replace(cfg, server=server), runtime=runtime)
        except MoeAppError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    @users.command("add")
    def users_add(
        name: str,
        role: str = typer.Option("clinician", help="clinician | reviewer | admin"),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    ) -> None:
        """Add a user; asks for the password twice (or reads one line from stdin)."""
        from moe_app.auth import UserStore
        from moe_app.config import load_config
        from moe_app.errors import MoeAppError

        if password_stdin:
            password = typer.get_text_stream("stdin").readline().rstrip("\n")
        else:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Repeat: ") != password:
                typer.echo("error: the passwords differ", err=True)
                raise typer.Exit(2)
        try:
            UserStore(load_config().paths.users_file).add(name, password, role)
        except MoeAppError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"added {name} ({role})")

    @users.command("remove")
    def users_remove(name: str) -> None:
        """Remove a user."""
        from moe_app.auth import UserStore
        from moe_app.config import load_config
        from moe_app.errors import MoeAppError

        try:
            UserStore(load_config().paths.users_file).remove(name)
        except MoeAppError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"removed {name}")

    @users.command("list")
    def users_list() -> None:
        """List users and roles (never hashes)."""
        from moe_app.auth import UserStore
        from moe_app.config import load_config

        for user in UserStore(load_config().paths.users_file).list():
            typer.echo(f"{user.name}\t{user.role}")
