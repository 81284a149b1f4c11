"""The stages joined: intake -> de-identification -> model runtime -> audit.

`Pipeline` is what the CLI and the web app hold: one per process, created once, shared by
every user (the model is immutable; the audit store serialises its own writes). Everything a
request needs is passed in (the actor) or returned (the `Diagnosis`), so no per-user state
lives here.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moe_app.audit.events import Actor  # who is asking: recorded on every audit event
from moe_app.config import AppConfig
from moe_app.errors import CaseError, MoeAppError
from moe_app.intake.case import Case
from moe_app.prediction import Prediction

if TYPE_CHECKING:
    from moe_app.audit import AuditStore
    from moe_app.model import LoadedModel
    from moe_app.runtime import Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Diagnosis:
    """A case after the model: what the UI shows and the feedback refers to."""

    case: Case
    prediction: Prediction
    event_id: int | None  # the audit event of this prediction (None without an audit store)


def prediction_payload(case: Case, prediction: Prediction) -> dict[str, Any]:
    """The audit payload: the prediction and input hashes, never pixels or report text."""
    data = prediction.to_json()
    data.pop("case", None)  # a folder or upload name may be anything a user typed
    return {
        "prediction": data,
        "input_hashes": dict(case.input_hashes),
        "warnings_count": len(case.warnings),
    }


def _error_fingerprint(exc: BaseException) -> str:
    """A short stable id for an error kind, so failures can be grouped without their text."""
    return hashlib.sha256(type(exc).__name__.encode()).hexdigest()[:12]


class Pipeline:
    """Intake, prediction and audit for one process."""

    def __init__(
        self,
        config: AppConfig,
        predictor: Predictor,
        audit: AuditStore | None,
        key: bytes,
    ) -> None:
        self.config = config
        self.predictor = predictor
        self.audit = audit
        self._key = key

    @classmethod
    def from_config(
        cls, config: AppConfig, *, runtime: str = "auto", with_audit: bool = True
    ) -> Pipeline:
        """Load the model, open the audit store and the pseudonym key named by `config`."""
        from moe_app.deid import load_or_create_key
        from moe_app.runtime import load_predictor

        key = load_or_create_key(config.paths.pseudonym_key_file)
        predictor = load_predictor(config.paths.model_dir, runtime=runtime)
        audit = None
        if with_audit:
            from moe_app.audit import AuditStore

            audit = AuditStore.open(config.database_url)
        return cls(config, predictor, audit, key)

    @functools.cached_property
    def torch_model(self) -> LoadedModel:
        """The PyTorch model, for explanations (gradients); loaded on first use, then shared."""
        from moe_app.model import LoadedModel, load_model

        loaded = getattr(self.predictor, "lm", None)  # the torch runtime has it loaded already
        return loaded if isinstance(loaded, LoadedModel) else load_model(self.config.paths.model_dir)

    def parameter_counts(self) -> dict[str, int]:
        """Expert name -> parameter count (trainable and frozen)."""
        from moe_app.model import count_parameters

        return dict(count_parameters(self.torch_model.model)["experts"])  # type: ignore[arg-type]

    # -- intake ---------------------------------------------------------------------------
    def load_folder(self, path: Path) -> Case:
        from moe_app.intake import load_case_folder

        return load_case_folder(path, key=self._key, limits=self.config.intake)

    def load_upload(
        self,
        files: Sequence[Path],
        *,
        report_text: str | None,
        vitals: Mapping[str, object] | str | None,
        case_id: str,
    ) -> Case:
        from moe_app.intake import load_upload

        return load_upload(
            files,
            report_text=report_text,
            vitals=vitals,
            key=self._key,
            case_id=case_id,
            limits=self.config.intake,
        )

    # -- model ----------------------------------------------------------------------------
    def diagnose(
        self, case: Case, actor: Actor, *, top_k: int | None = None, started: float | None = None
    ) -> Diagnosis:
        """Run the model on one case and record the submission and the outcome.

        Args:
            case: a de-identified case from intake.
            actor: who asks (recorded on every event).
            top_k: experts per case (default: the model's).
            started: `time.perf_counter()` when intake of this case began, so that the reported
                latency covers decoding too (default: now, i.e. the model only).
        """
        self._record("case.submitted", actor, case=case, payload={"modalities": case.modalities})
        try:
            prediction = self.predictor.predict(
                [case], top_k=top_k, started=None if started is None else [started]
            )[0]
        except MoeAppError as exc:
            self.record_failure(actor, exc, case=case)
            raise
        event_id = self._record(
            "prediction.made", actor, case=case, payload=prediction_payload(case, prediction)
        )
        return Diagnosis(case=case, prediction=prediction, event_id=event_id)

    def what_if(
        self, diagnosis: Diagnosis, *, removed_experts: Sequence[str] = (), removed_modalities: Sequence[str] = ()
    ) -> Prediction:
        """Re-run the model with experts or whole modalities taken away (not audited as a prediction)."""
        return self.predictor.what_if(
            diagnosis.case,
            removed_experts=tuple(removed_experts),
            removed_modalities=tuple(removed_modalities),
        )

    # -- audit ----------------------------------------------------------------------------
    def record_failure(self, actor: Actor, exc: BaseException, *, case: Case | None = None) -> None:
        """Audit a failed case. The message is PHI-free by contract of CaseError/ModelError."""
        self._record(
            "case.rejected" if isinstance(exc, CaseError) else "prediction.failed",
            actor,
            case=case,
            outcome=4 if isinstance(exc, CaseError) else 8,
            description=str(exc)[:500],
            payload={
                "stage": "intake" if isinstance(exc, CaseError) else "model",
                "error_type": type(exc).__name__,
                "error_id": _error_fingerprint(exc),
            },
        )

    def record_login(self, actor: Actor, *, ok: bool) -> None:
        """Audit a sign-in attempt (failed ones with outcome 4, minor failure)."""
        self._record(
            "login.succeeded" if ok else "login.failed",
            actor,
            outcome=0 if ok else 4,
            description="" if ok else "wrong user name or password",
        )

    def feedback(
        self, diagnosis: Diagnosis, actor: Actor, *, agree: bool, corrected_label: str | None, comment: str
    ) -> None:
        if self.audit is None or diagnosis.event_id is None:
            raise MoeAppError("Feedback needs the audit store, which is not configured.")
        from moe_app.deid import scrub_report

        self.audit.record_feedback(
            diagnosis.event_id,
            actor,
            agree=agree,
            corrected_label=corrected_label,
            comment=scrub_report(comment or ""),
        )

    def _record(
        self,
        action: str,
        actor: Actor,
        *,
        case: Case | None = None,
        payload: dict[str, Any] | None = None,
        outcome: int = 0,
        description: str = "",
    ) -> int | None:
        if self.audit is None:
            return None
        from moe_app.audit import NewEvent

        event = NewEvent(
            action=action,
            actor=actor.name,
            actor_role=actor.role,
            client_address=actor.client_address,
            outcome=outcome,
            outcome_description=description,
            case_pseudonym=case.pseudonym if case else None,
            model_version=self.predictor.model_version,
            model_weights_sha256=self.predictor.weights_sha256,
            runtime=self.predictor.runtime,
            payload=payload or {},
        )
        return self.audit.append(event).id
