"""Event handlers: thin functions between gradio components and the pipeline.

Domain errors become `gr.Error` here and only here. Per-user data travels in `gr.State`
(a `Session`); the `Pipeline` is shared and immutable.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import numpy as np

from moe_app.auth import DEMO_USER, UserStore
from moe_app.errors import MoeAppError
from moe_app.labels import LABELS, SEX_KEY, VITALS
from moe_app.pipeline import Actor, Diagnosis, Pipeline

log = logging.getLogger(__name__)
T = TypeVar("T")

UNKNOWN_SEX = "not recorded"


@dataclass
class Session:
    """What one browser session holds between events."""

    diagnosis: Diagnosis | None = None
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)


def actor_from(request: gr.Request | None, users: UserStore) -> Actor:
    name = getattr(request, "username", None) or DEMO_USER
    role = "demo" if name == DEMO_USER else (users.role_of(name) or "clinician")
    client = getattr(getattr(request, "client", None), "host", None)
    return Actor(name=name, role=role, client_address=client)


def user_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn domain errors into inline messages and anything else into a reference number."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except MoeAppError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback to the user
            ref = uuid.uuid4().hex[:8]
            # Only the type is logged: messages of third-party errors may quote input data.
            log.error("unexpected %s in %s (ref %s)", type(exc).__name__, fn.__name__, ref)
            raise gr.Error(
                f"Something went wrong on our side (reference {ref}). Your input was not stored; "
                "please try again or tell your administrator the reference.",
                print_exception=False,
            ) from None

    return wrapper


def vitals_from_fields(values: Sequence[float | None], sex: str | None) -> dict[str, object]:
    """Form fields -> the vitals mapping of the intake contract (empty field = not measured)."""
    data: dict[str, object] = {
        spec.key: float(v) for spec, v in zip(VITALS, values, strict=True) if v is not None
    }
    if sex and sex != UNKNOWN_SEX:
        data[SEX_KEY] = sex
    return data


def sample_dicoms(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in ("report.txt", "vitals.json"))


def read_sample(folder: Path) -> tuple[str, list[float | None], str]:
    """A sample case's report and vitals, to pre-fill the form (samples are synthetic)."""
    from moe_app.deid import scrub_report

    report_path = folder / "report.txt"
    # Scrubbed like any report before it reaches a browser (the samples' identifiers are invented).
    report = scrub_report(report_path.read_text(encoding="utf-8")) if report_path.exists() else ""
    vitals_path = folder / "vitals.json"
    vitals = json.loads(vitals_path.read_text(encoding="utf-8")) if vitals_path.exists() else {}
    values = [vitals.get(spec.key) for spec in VITALS]
    return report, values, vitals.get(SEX_KEY, UNKNOWN_SEX)


def remove_uploads(paths: Sequence[str | Path]) -> None:
    """Delete uploaded files (and gradio's per-upload folder) once intake has read them."""
    for p in paths:
        path = Path(p)
        path.unlink(missing_ok=True)
        parent = path.parent
        if parent.exists() and not any(parent.iterdir()):
            shutil.rmtree(parent, ignore_errors=True)


def label_choices() -> list[tuple[str, str]]:
    from moe_app.labels import LABEL_TITLES

    return [(LABEL_TITLES[label], label) for label in LABELS]


def pipeline_actor(pipeline: Pipeline, request: gr.Request | None) -> Actor:
    return actor_from(request, UserStore(pipeline.config.paths.users_file))
