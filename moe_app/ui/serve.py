"""Create and launch the web app from the configuration."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from moe_app.config import AppConfig

log = logging.getLogger(__name__)


@dataclass
class Created:
    app: Any  # gr.Blocks
    pipeline: Any  # Pipeline
    launch_kwargs: dict[str, Any]


def create(config: AppConfig, *, runtime: str = "auto") -> Created:
    """Everything `serve` does except listening: the app, its pipeline and launch arguments."""
    from moe_app.ui.launch import launch_kwargs, prepare_environment

    settings = prepare_environment(config)  # before gradio is imported
    import gradio as gr

    from moe_app.auth import UserStore
    from moe_app.pipeline import Actor, Pipeline
    from moe_app.ui.app import CSS, build_app

    pipeline = Pipeline.from_config(config, runtime=runtime)
    users = UserStore(config.paths.users_file)

    def check_login(username: str, password: str) -> bool:
        user = users.check(username, password)
        pipeline.record_login(Actor(name=username[:64], role=user.role if user else "unknown"), ok=user is not None)
        return user is not None

    app = build_app(pipeline, demo_mode=settings.demo_mode)
    app.queue(default_concurrency_limit=config.server.concurrency_limit, max_size=64)
    kwargs = launch_kwargs(config, settings, check_login)
    kwargs["theme"] = gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    kwargs["css"] = CSS
    return Created(app=app, pipeline=pipeline, launch_kwargs=kwargs)


def serve(config: AppConfig, *, runtime: str = "auto", block: bool = True) -> Created:
    """Start the app; with `block=False` return once it is listening (tests)."""
    t0 = time.perf_counter()
    created = create(config, runtime=runtime)
    created.app.launch(prevent_thread_lock=not block, **created.launch_kwargs)
    log.info("app ready in %.1f s on %s:%s", time.perf_counter() - t0, config.server.host, config.server.port)
    return created
