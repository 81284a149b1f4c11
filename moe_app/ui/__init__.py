"""The web app: `serve(config)` starts it; `build_app(pipeline, demo_mode=...)` builds it (tests).

This is the only package that imports gradio.
"""

from __future__ import annotations

from moe_app.ui.serve import create, serve

__all__ = ["create", "serve"]
