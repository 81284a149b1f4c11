"""The event functions the layout wires up, one method per user action.

Each method is thin: it turns component values into pipeline calls and pipeline results into
component values. Errors a user can fix come back as `gr.Error` (see `user_errors`).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from moe_app.errors import CaseError, MoeAppError
from moe_app.labels import LABELS, VITALS
from moe_app.pipeline import Pipeline
from moe_app.prediction import Prediction
from moe_app.ui import views
from moe_app.ui.handlers import (
    UNKNOWN_SEX,
    Session,
    pipeline_actor,
    read_sample,
    remove_uploads,
    sample_dicoms,
    user_errors,
    vitals_from_fields,
)

log = logging.getLogger(__name__)
N_VITALS = len(VITALS)


def _paths(files: Any) -> list[str]:
    if not files:
        return []
    items = files if isinstance(files, list) else [files]
    return [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in items]


def _private_file(suffix: str, data: bytes | str) -> str:
    """Write a download into the app's private temp dir (cleaned by gradio's delete_cache)."""
    mode = "wb" if isinstance(data, bytes) else "w"
    with tempfile.NamedTemporaryFile(mode, suffix=suffix, delete=False, prefix="moe-export-") as fh:
        fh.write(data)
        return fh.name


def _day(text: str | None, field: str, *, next_day: bool = False) -> datetime | None:
    """'YYYY-MM-DD' -> midnight UTC (the next midnight for an inclusive end), or None if empty."""
    if not text or not text.strip():
        return None
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise CaseError(f"{field} must be a date like 2026-11-29.") from None
    return day + timedelta(days=1) if next_day else day


def _vital_row(r: Any) -> list[Any]:
    """One vitals table row: field, value with unit, reference range, attribution."""
    if r.missing:
        value = "not measured"
    elif isinstance(r.value, float | int):
        value = f"{r.value:g} {r.unit}".strip()
    else:
        value = str(r.value)
    ref = f"{r.ref_low:g}–{r.ref_high:g}" if r.ref_low is not None and r.ref_high is not None else ""
    return [r.title, value, ref, round(float(r.attribution), 4)]


class Events:
    """All UI actions over one shared pipeline."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline

    # -- static content -----------------------------------------------------------------
    def expert_names(self) -> list[str]:
        from moe_app.model import EXPERTS

        return [n for n in self.p.predictor.expert_names if n in EXPERTS]

    def sample_names(self) -> list[str]:
        root = self.p.config.paths.sample_cases_dir
        return sorted(d.name for d in root.iterdir() if d.is_dir()) if root.exists() else []

    def about_markdown(self) -> str:
        card = self.p.config.paths.model_dir / "model_card.md"
        text = card.read_text(encoding="utf-8") if card.exists() else "_No model card found._"
        return f"{views.NOT_FOR_CLINICAL_USE}\n\n{text}"

    def expert_rows(self) -> list[list[Any]]:
        from moe_app.model import EXPERTS

        counts = self.p.parameter_counts()
        return [
            [EXPERTS[n].title, EXPERTS[n].modality, counts.get(n, 0), EXPERTS[n].description]
            for n in self.expert_names()
        ]

    # -- new case -------------------------------------------------------------------------
    @user_errors
    def load_sample(self, name: str | None) -> list[Any]:
        if not name:
            return [gr.update()] * (N_VITALS + 3)
        folder = self._sample_dir(name)
        report, values, sex = read_sample(folder)
        return [report, *values, sex, None]

    def _sample_dir(self, name: str) -> Path:
        root = self.p.config.paths.sample_cases_dir
        folder = (root / name).resolve()
        if folder.parent != root.resolve() or not folder.is_dir():
            raise CaseError(f"There is no sample case called {name!r}.")
        return folder

    @user_errors
    def run_form(self, request: gr.Request, session: Session, sample: str | None, files: Any, report: str, report_file: Any, sex: str | None, *values: float | None) -> list[Any]:
        # `request` comes first: gradio injects it only into positional parameters.
        started = time.perf_counter()
        actor = pipeline_actor(self.p, request)
        uploads = _paths(files)
        report_uploads = _paths(report_file)
        try:
            if report_uploads:
                from moe_app.intake import read_report

                report = read_report(Path(report_uploads[0]))
            images = [Path(p) for p in uploads]
            case_id = "upload"
            if not images and sample:
                images = sample_dicoms(self._sample_dir(sample))
                case_id = sample
            vitals = vitals_from_fields(values, sex)
            try:
                case = self.p.load_upload(images, report_text=report or None, vitals=vitals or None, case_id=case_id)
            except CaseError as exc:
                self.p.record_failure(actor, exc)
                raise
        finally:
            remove_uploads(uploads + report_uploads)  # nothing uploaded outlives the run
        diagnosis = self.p.diagnose(case, actor, started=started)
        new = Session(diagnosis=diagnosis)
        return self._result_outputs(new)

    def _result_outputs(self, s: Session) -> list[Any]:
        from moe_app import explain

        assert s.diagnosis is not None
        pred, case = s.diagnosis.prediction, s.diagnosis.case
        n_frames = len(case.image.frames) if case.image else 1
        image_experts = [n for n in pred.selected_experts if pred.experts[n].modality == "image"]
        warn = "\n".join(f"- ⚠ {w}" for w in case.warnings)
        return [
            s,
            views.diagnosis_markdown(pred),
            views.runtime_markdown(pred),
            explain.probabilities_figure(pred),
            explain.gate_figure(pred),
            explain.contributions_figure(pred),
            explain.opinions_figure(pred),
            explain.summary(pred),
            warn,
            self._image(s, "default", None, "none", 0.0),
            gr.update(maximum=max(1, n_frames - 1), value=case.image.picked_index if case.image else 0, interactive=n_frames > 1),
            gr.update(choices=["none", *image_experts], value="none"),
            views.header_rows(case.image.header) if case.image else [],
            pred.diagnosis,
        ]

    @user_errors
    def explain(self, session: Session, window: str, frame: float, overlay: str, opacity: float) -> list[Any]:
        from moe_app import explain

        if session is None or session.diagnosis is None:
            return [session, *([gr.update()] * 6)]
        d = session.diagnosis
        ex = explain.explain_case(self.p.torch_model, d.case, d.prediction)
        session.heatmaps = dict(ex.heatmaps)
        rows = [_vital_row(r) for r in ex.vitals]
        shown = overlay if overlay in ex.heatmaps else next(iter(ex.heatmaps), "none")
        return [
            session,
            self._image(session, window, frame, shown, opacity),
            ex.report or None,
            explain.vitals_figure(ex.vitals) if ex.vitals else None,
            rows,
            explain.summary(d.prediction, extras=ex.extras()),
            gr.update(value=shown),
        ]

    def _image(self, s: Session, window: str, frame: float | None, overlay: str, opacity: float) -> np.ndarray | None:
        from moe_app import explain
        from moe_app.intake.imaging import to_display

        if s.diagnosis is None or s.diagnosis.case.image is None:
            return None
        img = s.diagnosis.case.image
        idx = int(frame) if frame is not None else img.picked_index
        idx = min(max(idx, 0), len(img.frames) - 1)
        presets = {p.name.split(" ")[0]: p for p in img.windows}
        preset = presets.get(window, img.windows[0])
        display = to_display(img.frames[idx], preset, invert=img.photometric == "MONOCHROME1")
        heat = s.heatmaps.get(overlay)
        return explain.overlay(display, heat, opacity) if heat is not None and opacity > 0 else display

    @user_errors
    def render_image(self, session: Session, window: str, frame: float, overlay: str, opacity: float) -> np.ndarray | None:
        return self._image(session, window, frame, overlay, opacity)

    @user_errors
    def contributions_for(self, session: Session, label: str | None) -> Any:
        from moe_app import explain

        if session is None or session.diagnosis is None or not label:
            return gr.update()
        return explain.contributions_figure(session.diagnosis.prediction, label)

    @user_errors
    def what_if(self, session: Session, experts: list[str], modalities: list[str], opinion_of: str | None) -> list[Any]:
        from moe_app import explain

        if session is None or session.diagnosis is None:
            raise CaseError("Run a case first.")
        d = session.diagnosis
        extra = {}
        if opinion_of and opinion_of not in d.prediction.selected_experts:
            extra[opinion_of] = self.p.predictor.expert_opinion(d.case, opinion_of).probabilities
        opinions = explain.opinions_figure(d.prediction, extra or None)
        if not experts and not modalities:
            return [gr.update(), "Choose experts or modalities to remove.", opinions]
        after = self.p.what_if(d, removed_experts=experts, removed_modalities=modalities)
        return [explain.what_if_figure(d.prediction, after), explain.what_if_summary(d.prediction, after), opinions]

    @user_errors
    def clear_form(self) -> list[Any]:
        return [Session(), None, None, "", None, *([None] * N_VITALS), UNKNOWN_SEX, "Load a sample case or upload one, then press **Run**."]

    # -- export and feedback -----------------------------------------------------------------
    def _need(self, session: Session) -> Any:
        if session is None or session.diagnosis is None:
            raise CaseError("Run a case first.")
        return session.diagnosis

    @user_errors
    def export_fhir(self, session: Session) -> str:
        from moe_app.fhir_report import diagnostic_report

        d = self._need(session)
        doc = diagnostic_report(d.prediction, pseudonym=d.case.pseudonym, weights_sha256=self.p.predictor.weights_sha256)
        return _private_file(".fhir.json", json.dumps(doc, indent=2))

    @user_errors
    def export_printable(self, session: Session) -> str:
        from moe_app import explain

        d = self._need(session)
        images: dict[str, str] = {}
        shown = self._image(session, "default", None, next(iter(session.heatmaps), "none"), 0.45)
        if shown is not None:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(shown).save(buf, format="PNG")
            images["Image (de-identified) with the heatmap of the first image expert"] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        page = views.printable_html(d.prediction, d.case.pseudonym, explain.summary(d.prediction), images)
        return _private_file(".html", page)

    @user_errors
    def feedback(self, session: Session, verdict: str | None, corrected: str | None, comment: str, request: gr.Request) -> str:
        d = self._need(session)
        if verdict not in ("agree", "disagree"):
            raise CaseError("Choose agree or disagree first.")
        if verdict == "disagree" and corrected not in LABELS:
            raise CaseError("When you disagree, choose the correct diagnosis.")
        self.p.feedback(d, pipeline_actor(self.p, request), agree=verdict == "agree", corrected_label=corrected if verdict == "disagree" else None, comment=comment or "")
        return f"Feedback saved against prediction #{d.event_id}. Thank you."

    # -- audit ------------------------------------------------------------------------------
    def _audit(self) -> Any:
        if self.p.audit is None:
            raise MoeAppError("The audit store is not configured.")
        return self.p.audit

    @user_errors
    def search_audit(self, text: str, action: str, user: str, since: str, until: str, request: gr.Request) -> list[list[Any]]:
        from moe_app.audit import EventFilter

        flt = EventFilter(
            text=text or None, action=action or None, actor=user or None,
            since=_day(since, "From"), until=_day(until, "Until", next_day=True),
        )
        events = self._audit().list_events(pipeline_actor(self.p, request), flt, limit=200)
        return views.audit_rows(events)

    @user_errors
    def audit_detail(self, event_id: float | None, request: gr.Request) -> list[Any]:
        from moe_app import explain

        if event_id is None:
            raise CaseError("Enter an event id from the table.")
        ev = self._audit().get_event(int(event_id), pipeline_actor(self.p, request))
        data = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in vars(ev).items()}
        stored = (ev.payload or {}).get("prediction")
        if not stored:
            return [data, None, None]
        pred = Prediction.from_json(stored)
        return [data, explain.gate_figure(pred), explain.contributions_figure(pred)]

    @user_errors
    def verify_chain(self, request: gr.Request) -> str:
        res = self._audit().verify(actor=pipeline_actor(self.p, request))
        if res.ok:
            return f"✅ Chain intact: {res.count} events, head {res.head_hash[:16]}…"
        return f"❌ Chain broken at event #{res.first_bad_seq}: {res.reason}"

    @user_errors
    def export_audit_fhir(self, request: gr.Request) -> str:
        path = _private_file(".auditevents.json", "")
        self._audit().export_fhir(Path(path), actor=pipeline_actor(self.p, request))
        return path

    @user_errors
    def export_audit_csv(self, request: gr.Request) -> str:
        path = _private_file(".audit.csv", "")
        self._audit().export_csv(Path(path), actor=pipeline_actor(self.p, request))
        return path

    # -- programmatic API -----------------------------------------------------------------
    @user_errors
    def predict_case(self, files: Any, report: str, vitals_json: str, request: gr.Request) -> dict[str, Any]:
        """DICOM files, report text and a vitals JSON string -> the `moe-app predict --json` object."""
        started = time.perf_counter()
        actor = pipeline_actor(self.p, request)
        uploads = _paths(files)
        try:
            try:
                case = self.p.load_upload([Path(p) for p in uploads], report_text=report or None, vitals=vitals_json or None, case_id="api")
            except CaseError as exc:
                self.p.record_failure(actor, exc)
                raise
        finally:
            remove_uploads(uploads)
        return self.p.diagnose(case, actor, started=started).prediction.to_json()
