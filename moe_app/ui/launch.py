"""Start the web app with settings that are safe for patient data.

Gradio's defaults suit public demos, not hospitals, so every relevant one is set here
explicitly: analytics off, no share link, no flagging, no run history, monitoring off,
a private temp dir with cache deletion, a file-size cap, no paths served beyond assets/.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from moe_app.auth import UserStore
from moe_app.config import ASSETS_DIR, AppConfig
from moe_app.errors import ConfigError

log = logging.getLogger(__name__)

# Uploads and generated files older than this are deleted (checked as often).
CACHE_MAX_AGE_S = 900


@dataclass(frozen=True)
class SecuritySettings:
    demo_mode: bool  # loopback and no users: one local demo user, no login
    temp_dir: Path


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names resolving only to them ("localhost")."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def prepare_environment(config: AppConfig) -> SecuritySettings:
    """Set the environment gradio reads at import time; refuse unsafe bindings.

    Must run before `import gradio`.
    """
    users = UserStore(config.paths.users_file)
    demo = not users.has_users()
    if demo and not is_loopback(config.server.host):
        raise ConfigError(
            f"Refusing to listen on {config.server.host}: no users are configured, so anyone on "
            "the network could use the app. Add a user with `moe-app users add NAME` or bind to 127.0.0.1."
        )
    temp_dir = config.paths.data_dir / "gradio-tmp"
    temp_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(temp_dir, 0o700)
    os.environ["GRADIO_TEMP_DIR"] = str(temp_dir)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_FLAGGING_MODE"] = "never"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    tempfile.tempdir = str(temp_dir)  # our own temp files land in the private dir too
    return SecuritySettings(demo_mode=demo, temp_dir=temp_dir)


def launch_kwargs(config: AppConfig, settings: SecuritySettings, auth_fn: object | None) -> dict[str, object]:
    """Arguments for `Blocks.launch` (theme and css are added by the caller)."""
    return {
        "server_name": config.server.host,
        "server_port": config.server.port,
        "share": False,
        "auth": None if settings.demo_mode else auth_fn,
        "auth_message": "Sign in with your workstation account. Not for clinical use.",
        "max_file_size": config.server.max_file_size,
        "enable_monitoring": False,
        "allowed_paths": [str(ASSETS_DIR / "ui")],
        "footer_links": [],
        "run_history": False,
        "show_error": False,
        "pwa": False,
        "mcp_server": False,
        "ssr_mode": False,
        "quiet": True,
    }
