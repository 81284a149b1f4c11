"""The prediction record every runtime returns and every consumer (CLI, UI, audit) reads.

Its JSON form is the contract of `moe-app predict --json` and of the `predict_case` API:

    {"case", "diagnosis", "probabilities", "gating", "selected_experts", "experts",
     "contributions", "modalities", "uncertain", "model_version", "runtime", "latency_ms"}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExpertOpinion:
    modality: str  # "image" | "report" | "vitals" | "multimodal"
    probabilities: dict[str, float]  # label -> p (softmax of this expert alone)


@dataclass(frozen=True)
class Prediction:
    """One case's answer. Gate weights of unselected experts are 0; selected ones sum to 1."""

    case: str  # case folder / upload name
    diagnosis: str  # always the most probable label
    probabilities: dict[str, float]  # label -> calibrated mixture probability
    gating: dict[str, float]  # expert -> renormalised gate weight (0 when not selected)
    selected_experts: list[str]  # in order of decreasing weight
    experts: dict[str, ExpertOpinion]  # selected experts' own opinions
    contributions: dict[str, dict[str, float]]  # expert -> label -> weight * p
    modalities: dict[str, bool]
    uncertain: bool  # the model card's abstention rule fired
    model_version: str
    runtime: str  # e.g. "onnxruntime:CPUExecutionProvider" or "torch:cpu"
    latency_ms: float
    gate_probabilities: dict[str, float] = field(default_factory=dict)  # full softmax, before top-k
    uncertainty_reason: str = ""  # plain words when uncertain

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Prediction:
        """Rebuild a prediction from its JSON form (e.g. as stored in the audit payload)."""
        return cls(
            case=str(data.get("case", "")),
            diagnosis=data["diagnosis"],
            probabilities=dict(data["probabilities"]),
            gating=dict(data["gating"]),
            selected_experts=list(data["selected_experts"]),
            experts={
                name: ExpertOpinion(modality=op["modality"], probabilities=dict(op["probabilities"]))
                for name, op in data.get("experts", {}).items()
            },
            contributions={k: dict(v) for k, v in data.get("contributions", {}).items()},
            modalities=dict(data.get("modalities", {})),
            uncertain=bool(data.get("uncertain", False)),
            model_version=str(data.get("model_version", "")),
            runtime=str(data.get("runtime", "")),
            latency_ms=float(data.get("latency_ms", 0.0)),
            gate_probabilities=dict(data.get("gate_probabilities", {})),
            uncertainty_reason=str(data.get("uncertainty_reason", "")),
        )

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object (extra fields are appended after the contract's)."""
        return {
            "case": self.case,
            "diagnosis": self.diagnosis,
            "probabilities": self.probabilities,
            "gating": self.gating,
            "selected_experts": list(self.selected_experts),
            "experts": {
                name: {"modality": op.modality, "probabilities": op.probabilities}
                for name, op in self.experts.items()
            },
            "contributions": self.contributions,
            "modalities": self.modalities,
            "uncertain": self.uncertain,
            "model_version": self.model_version,
            "runtime": self.runtime,
            "latency_ms": self.latency_ms,
            "gate_probabilities": self.gate_probabilities,
            "uncertainty_reason": self.uncertainty_reason,
        }
