"""Export one result as a FHIR R4 DiagnosticReport (JSON) with contained Observations.

One Observation per diagnosis probability, each carrying the gate weights of the selected
experts as components; the model is a contained Device with its version and weights hash.
The subject is only the case pseudonym: no patient identifier leaves the app this way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moe_app.labels import LABEL_TITLES
from moe_app.prediction import Prediction

PSEUDONYM_SYSTEM = "urn:moe-app:case-pseudonym"
EXPERT_SYSTEM = "urn:moe-app:expert"
LABEL_SYSTEM = "urn:moe-app:diagnosis"


def _quantity(value: float, unit: str = "probability") -> dict[str, Any]:
    return {"value": round(float(value), 6), "unit": unit, "system": "http://unitsofmeasure.org", "code": "1"}


def diagnostic_report(
    pred: Prediction, *, pseudonym: str, weights_sha256: str, issued: datetime | None = None
) -> dict[str, Any]:
    """The FHIR R4 DiagnosticReport resource (a JSON-able dict) for one prediction."""
    issued = issued or datetime.now(UTC)
    subject = {"identifier": {"system": PSEUDONYM_SYSTEM, "value": pseudonym}, "display": "pseudonymised case"}
    device = {
        "resourceType": "Device",
        "id": "model",
        "deviceName": [{"name": "moe-app multimodal Mixture-of-Experts", "type": "model-name"}],
        "version": [{"value": pred.model_version}, {"type": {"text": "weights sha256"}, "value": weights_sha256}],
        "note": [{"text": "Trained on synthetic data. Not for clinical use."}],
    }
    components = [
        {
            "code": {"coding": [{"system": EXPERT_SYSTEM, "code": name}], "text": f"gate weight of {name}"},
            "valueQuantity": _quantity(pred.gating[name], "weight"),
        }
        for name in pred.selected_experts
    ]
    observations = []
    for i, (label, p) in enumerate(sorted(pred.probabilities.items(), key=lambda kv: -kv[1])):
        observations.append(
            {
                "resourceType": "Observation",
                "id": f"p{i}",
                "status": "preliminary",
                "code": {
                    "coding": [{"system": LABEL_SYSTEM, "code": label, "display": LABEL_TITLES.get(label, label)}],
                    "text": f"probability of {LABEL_TITLES.get(label, label)}",
                },
                "subject": subject,
                "issued": issued.isoformat(),
                "device": {"reference": "#model"},
                "valueQuantity": _quantity(p),
                "component": components,
            }
        )
    title = LABEL_TITLES.get(pred.diagnosis, pred.diagnosis)
    conclusion = (
        f"Uncertain, review needed (leaning {title}, {pred.probabilities[pred.diagnosis]:.0%})."
        if pred.uncertain
        else f"{title} ({pred.probabilities[pred.diagnosis]:.0%})."
    )
    return {
        "resourceType": "DiagnosticReport",
        "status": "preliminary",
        "contained": [device, *observations],
        "code": {"text": "AI-assisted multimodal chest case assessment (research, synthetic training data)"},
        "subject": subject,
        "issued": issued.isoformat(),
        "result": [{"reference": f"#{o['id']}"} for o in observations],
        "conclusion": conclusion + " Not for clinical use.",
    }
