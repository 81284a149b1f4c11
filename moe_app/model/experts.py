"""The expert pool: small networks, each mapping its own inputs to class logits.

Every expert class has `input_names` (the `ModelInputs` tensors it reads, so
`expert(**inputs.kwargs(expert.input_names))` works and each expert exports as its own ONNX
graph) and returns logits (B, C). Image experts expose `last_conv` (for Grad-CAM); report
experts expose `embeddings` and `forward_from_embeddings(embeds, attention_mask)` (for
Integrated Gradients on the token embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from moe_app.model.config import MoEConfig
from moe_app.model.text import build_encoder, encoder_width


@dataclass(frozen=True)
class ExpertSpec:
    name: str  # stable identifier (JSON keys, audit records, ONNX file names)
    title: str  # what the UI shows
    modality: str  # "image" | "report" | "vitals" | "multimodal"
    requires: tuple[str, ...]  # modalities that must be present; () = any one is enough
    description: str  # one line for the UI


EXPERTS: dict[str, ExpertSpec] = {s.name: s for s in (
    ExpertSpec("image_texture", "Imaging: texture", "image", ("image",),
               "CNN at full model resolution for opacity, consolidation and pleural-line texture."),
    ExpertSpec("image_shape", "Imaging: shape", "image", ("image",),
               "Coarse, position-aware CNN for heart size, mediastinum and costophrenic angles."),
    ExpertSpec("report_findings", "Report: findings", "report", ("report",),
               "Transformer encoder reading the whole report, including negations and hedges."),
    ExpertSpec("report_keywords", "Report: key phrases", "report", ("report",),
               "Short-phrase detector (n-gram convolution) for findings and negated findings."),
    ExpertSpec("vitals_labs", "Vitals and labs", "vitals", ("vitals",),
               "MLP on normalised vitals and labs with explicit missing-value indicators."),
    ExpertSpec("cross_modal", "Cross-modal", "multimodal", (),
               "Sees every present modality at low resolution and weighs them against each other."),
)}


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def _coords(x: torch.Tensor) -> torch.Tensor:
    """Append x/y coordinate channels (CoordConv) so a CNN knows left from right."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)  # (B, 1, H, W)
    xs = torch.linspace(-1, 1, w, dtype=x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)  # (B, 1, H, W)
    return torch.cat([x, ys, xs], dim=1)  # (B, C + 2, H, W)


class ImageTextureExpert(nn.Module):
    """Texture CNN: a patch stem (4x4 by default, 2x2 to keep thin lines) keeps every pixel but costs little.

    With `cfg.texture_sides` the head pools the left and right image halves separately, so
    one-sided findings (a pneumothorax rim and pleural line) show up as an asymmetry.
    """

    input_names = ("image",)

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        w, st, dil = cfg.cnn_width, cfg.texture_stem, cfg.texture_dilation
        stem = nn.Sequential(nn.Conv2d(3, w, st, st, bias=False), nn.BatchNorm2d(w), nn.ReLU())  # (B, w, S/st, S/st)
        third = _conv(2 * w, 2 * w, 1) if dil == 1 else nn.Sequential(
            nn.Conv2d(2 * w, 2 * w, 3, 1, dil, dilation=dil, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU())
        self.features = nn.Sequential(stem, _conv(w, 2 * w, 2), third)
        self.last_conv = nn.Conv2d(2 * w, 2 * w, 3, 1, 1)  # Grad-CAM target, (B, 2w, S/2st, S/2st)
        self.sides = cfg.texture_sides
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear((8 if self.sides else 4) * w, cfg.n_classes))

    @staticmethod
    def _pool(h: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) -> (B, 2K): mean and max over positions."""
        return torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.last_conv(self.features(_coords(image))))  # (B, 2w, h, w')
        if self.sides:
            half = h.shape[3] // 2
            pooled = torch.cat([self._pool(h[..., :half]), self._pool(h[..., half:])], dim=1)  # image-left, -right
        else:
            pooled = self._pool(h)  # (B, 4w)
        return self.head(pooled)  # (B, C)


class ImageShapeExpert(nn.Module):
    """Coarse, position-aware CNN (CoordConv input) on the image average-pooled to about 64 x 64."""

    input_names = ("image",)

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        w = cfg.cnn_width
        k = cfg.shape_channels or w // 2
        self.pool = max(1, cfg.image_size // 64)  # the coarse image is about 64 x 64 whatever the model size
        self.features = nn.Sequential(_conv(3, w, 2), _conv(w, 2 * w, 2), _conv(2 * w, 2 * w, 2))
        self.last_conv = nn.Conv2d(2 * w, k, 3, 1, 1)  # Grad-CAM target, (B, k, S/8p, S/8p)
        n = (cfg.image_size // self.pool // 8) ** 2 * k
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(n, cfg.hidden), nn.ReLU(),
                                  nn.Linear(cfg.hidden, cfg.n_classes))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        coarse = F.avg_pool2d(image, self.pool)  # (B, 1, S/p, S/p), S/p about 64
        h = F.relu(self.last_conv(self.features(_coords(coarse))))  # (B, k, S/8p, S/8p)
        return self.head(h.flatten(1))  # (B, k * (S/8p)^2) -> (B, C)


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the sequence of (B, T, H) with mask (B, T) -> (B, H)."""
    m = mask.to(h.dtype).unsqueeze(-1)  # (B, T, 1)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)


class ReportFindingsExpert(nn.Module):
    input_names = ("input_ids", "attention_mask")

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.encoder = build_encoder(cfg)
        self.frozen_encoder = cfg.text_encoder == "pretrained"
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(encoder_width(self.encoder), cfg.hidden),
                                  nn.GELU(), nn.Linear(cfg.hidden, cfg.n_classes))

    def train(self, mode: bool = True) -> ReportFindingsExpert:
        super().train(mode)
        if self.frozen_encoder:  # a frozen pretrained encoder always runs without dropout
            self.encoder.eval()
        return self

    @property
    def embeddings(self) -> nn.Embedding:
        """The word-embedding table (hook for captum's LayerIntegratedGradients)."""
        return self.encoder.get_input_embeddings()

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Masked mean of the encoder's last hidden states, (B, H)."""
        return self.pooled_from_embeddings(self.embeddings(input_ids), attention_mask)

    def pooled_from_embeddings(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        return masked_mean(hidden, attention_mask)  # (B, H)

    def forward_from_embeddings(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits from word embeddings (B, T, H), e.g. interpolated ones for Integrated Gradients."""
        return self.head(self.pooled_from_embeddings(embeds, attention_mask))  # (B, C)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.forward_from_embeddings(self.embeddings(input_ids), attention_mask)  # (B, C)


class PhraseEncoder(nn.Module):
    """Token embeddings -> n-gram convolutions (1, 3, 5 tokens) -> masked max pool, (B, 3D)."""

    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(vocab, dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, k, padding="same") for k in (1, 3, 5))
        self.out_dim = 3 * dim

    def from_embeddings(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = embeds.transpose(1, 2)  # (B, D, T)
        neg = (1.0 - attention_mask.to(x.dtype)).unsqueeze(1) * -1e4  # (B, 1, T)
        pooled = [(F.relu(conv(x)) + neg).amax(2) for conv in self.convs]  # 3 x (B, D)
        return torch.cat(pooled, dim=1).clamp(min=0.0)  # (B, 3D)


class ReportKeywordsExpert(nn.Module):
    input_names = ("input_ids", "attention_mask")

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.phrases = PhraseEncoder(cfg.vocab_size, cfg.token_dim)
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(self.phrases.out_dim, cfg.n_classes))

    @property
    def embeddings(self) -> nn.Embedding:
        return self.phrases.embeddings

    def forward_from_embeddings(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.phrases.from_embeddings(embeds, attention_mask))  # (B, C)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.forward_from_embeddings(self.embeddings(input_ids), attention_mask)


class VitalsExpert(nn.Module):
    input_names = ("vitals",)

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(cfg.n_vitals_features, cfg.hidden), nn.GELU(),
                                 nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, cfg.n_classes))

    def forward(self, vitals: torch.Tensor) -> torch.Tensor:
        return self.mlp(vitals)  # (B, C)


class CrossModalExpert(nn.Module):
    input_names = ("image", "input_ids", "attention_mask", "vitals", "presence")

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        w = cfg.cross_width or cfg.cnn_width
        self.pool = cfg.cross_pool
        self.image = nn.Sequential(_conv(3, w, 2), _conv(w, 2 * w, 2), _conv(2 * w, 2 * w, 2))
        self.phrases = PhraseEncoder(cfg.vocab_size, cfg.token_dim)
        self.vitals = nn.Sequential(nn.Linear(cfg.n_vitals_features, cfg.hidden), nn.GELU())
        n = 4 * w + self.phrases.out_dim + cfg.hidden + 3
        self.fuse = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(n, cfg.hidden), nn.GELU(),
                                  nn.Linear(cfg.hidden, cfg.n_classes))

    @property
    def last_conv(self) -> nn.Conv2d:
        """Grad-CAM target: the last conv of the image branch, (B, 2w, S/8p, S/8p)."""
        return self.image[-1][0]

    @property
    def embeddings(self) -> nn.Embedding:
        return self.phrases.embeddings

    def forward(self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                vitals: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        h = self.image(_coords(F.avg_pool2d(image, self.pool)))  # (B, 2w, S/8p, S/8p)
        img = torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1) * presence[:, 0:1]  # (B, 4w)
        rep = self.phrases.from_embeddings(self.embeddings(input_ids), attention_mask) * presence[:, 1:2]  # (B, 3D)
        vit = self.vitals(vitals) * presence[:, 2:3]  # (B, hidden)
        return self.fuse(torch.cat([img, rep, vit, presence], dim=1))  # (B, C)


EXPERT_CLASSES: dict[str, type[nn.Module]] = {
    "image_texture": ImageTextureExpert,
    "image_shape": ImageShapeExpert,
    "report_findings": ReportFindingsExpert,
    "report_keywords": ReportKeywordsExpert,
    "vitals_labs": VitalsExpert,
    "cross_modal": CrossModalExpert,
}


def build_expert(name: str, cfg: MoEConfig) -> nn.Module:
    from moe_app.errors import ModelError

    if name not in EXPERT_CLASSES:
        raise ModelError(f"unknown expert {name!r}; known: {sorted(EXPERT_CLASSES)}")
    return EXPERT_CLASSES[name](cfg)
