"""Typed, frozen configuration for every component, filled from the environment in one place.

Environment variables (all optional):

| variable | meaning | default |
| --- | --- | --- |
| `MOE_APP_DATA_DIR` | where the app keeps its database, keys, caches | `~/.local/share/moe-app` |
| `MOE_APP_DATABASE_URL` | SQLAlchemy URL of the audit store | SQLite file `audit.db` in the data dir |
| `MOE_APP_PSEUDONYM_KEY_FILE` | secret key for case pseudonyms (HMAC) | `pseudonym.key` in the data dir, created 0600 |
| `MOE_APP_MODEL_DIR` | trained model folder | `assets/model` in the repository |
| `MOE_APP_USERS_FILE` | users and password hashes | `users.json` in the data dir |
| `MOE_APP_SAMPLE_CASES_DIR` | case folders offered in the "Sample case" picker | `sample_cases` in the repository |
| `MOE_APP_HOST` / `MOE_APP_PORT` | where the web app listens | `127.0.0.1` / `7860` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from moe_app.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
SAMPLE_CASES_DIR = REPO_ROOT / "sample_cases"


@dataclass(frozen=True)
class IntakeLimits:
    """Bounds that keep a hostile or broken upload from exhausting the machine."""

    max_files: int = 2000  # files in one case folder or zip
    max_total_bytes: int = 1024**3  # uncompressed bytes in one case
    max_file_bytes: int = 512 * 1024**2  # one DICOM file
    max_pixels_per_frame: int = 8192 * 8192  # rows x columns
    max_frames: int = 2000
    max_report_bytes: int = 64 * 1024  # a report is text, not a document dump


@dataclass(frozen=True)
class Paths:
    data_dir: Path
    model_dir: Path
    pseudonym_key_file: Path
    users_file: Path
    sample_cases_dir: Path = SAMPLE_CASES_DIR


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    max_file_size: str = "200mb"  # gradio upload limit
    concurrency_limit: int = 4  # simultaneous runs per event


@dataclass(frozen=True)
class AppConfig:
    paths: Paths
    database_url: str
    server: ServerConfig = field(default_factory=ServerConfig)
    intake: IntakeLimits = field(default_factory=IntakeLimits)


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def load_config(env: Mapping[str, str] | None = None) -> AppConfig:
    """Build the whole configuration from environment variables (see module docstring)."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("MOE_APP_DATA_DIR") or Path.home() / ".local/share/moe-app").expanduser()
    paths = Paths(
        data_dir=data_dir,
        model_dir=Path(env.get("MOE_APP_MODEL_DIR") or ASSETS_DIR / "model").expanduser(),
        pseudonym_key_file=Path(
            env.get("MOE_APP_PSEUDONYM_KEY_FILE") or data_dir / "pseudonym.key"
        ).expanduser(),
        users_file=Path(env.get("MOE_APP_USERS_FILE") or data_dir / "users.json").expanduser(),
        sample_cases_dir=Path(env.get("MOE_APP_SAMPLE_CASES_DIR") or SAMPLE_CASES_DIR).expanduser(),
    )
    database_url = env.get("MOE_APP_DATABASE_URL") or f"sqlite:///{data_dir / 'audit.db'}"
    server = ServerConfig(
        host=env.get("MOE_APP_HOST") or "127.0.0.1",
        port=_int_env(env, "MOE_APP_PORT", 7860),
    )
    return AppConfig(paths=paths, database_url=database_url, server=server)
