"""Case -> tensors. Pure functions; the model package never reads files.

Vitals/labs are normalised with fixed per-field centres and scales taken from the reference
ranges in `moe_app.labels.VITALS` (no statistics learned from data, so a hospital's case is
normalised exactly like a training case), with an explicit missing indicator per field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from moe_app.errors import ModelError
from moe_app.intake.case import Case
from moe_app.labels import MODALITIES, SEX_VALUES, VITAL_KEYS, VITALS, VitalSpec
from moe_app.model.config import MoEConfig
from moe_app.model.text import ReportTokenizer

# Heavy-tailed labs are compared on a log scale: log1p(value) - log1p(upper reference limit).
LOG_SCALED: frozenset[str] = frozenset({"bnp_pg_per_ml", "d_dimer_ng_per_ml", "wbc_10e9_per_l"})
CLIP = 8.0  # normalised values are clipped to [-CLIP, CLIP] so an outlier cannot dominate


@dataclass(frozen=True)
class ModelInputs:
    """A batch of model inputs. Absent modalities are zero tensors with presence 0."""

    image: torch.Tensor  # (B, 1, S, S) float32 in [0, 1]
    input_ids: torch.Tensor  # (B, T) int64
    attention_mask: torch.Tensor  # (B, T) int64
    vitals: torch.Tensor  # (B, 2V + 2) float32: values, missing indicators, sex one-hot
    presence: torch.Tensor  # (B, 3) float32: image, report, vitals (MODALITIES order)
    report_pooled: torch.Tensor | None = None  # (B, H) frozen-encoder cache (training only)

    def __len__(self) -> int:
        return int(self.image.shape[0])

    def select(self, rows: torch.Tensor) -> ModelInputs:
        """The rows `rows` (index tensor or bool mask) of every field."""
        return ModelInputs(**{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[rows])
                              for f in fields(self)})

    def kwargs(self, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """Only the named tensors, e.g. for `expert(**inputs.kwargs(expert.input_names))`."""
        return {n: getattr(self, n) for n in names}

    def with_presence(self, presence: torch.Tensor) -> ModelInputs:
        """Hide modalities: zero the inputs of every modality whose new presence is 0."""
        keep = presence.to(self.image.dtype)  # (B, 3)
        img = self.image * keep[:, 0].view(-1, 1, 1, 1)  # (B, 1, S, S)
        rep = keep[:, 1].long().view(-1, 1)  # (B, 1)
        ids = torch.where(rep.bool(), self.input_ids, _empty_ids(self.input_ids))  # (B, T)
        mask = torch.where(rep.bool(), self.attention_mask, _empty_mask(self.attention_mask))  # (B, T)
        vit = torch.where(keep[:, 2:3].bool(), self.vitals, _absent_vitals(self.vitals))  # (B, V2)
        pooled = None if self.report_pooled is None else self.report_pooled * keep[:, 1:2]
        return replace(self, image=img, input_ids=ids, attention_mask=mask, vitals=vit,
                       presence=keep, report_pooled=pooled)


def _empty_ids(ids: torch.Tensor) -> torch.Tensor:
    # "[CLS] [SEP]" as in `ReportTokenizer.encode("")`: copy the first and the last real token.
    out = torch.zeros_like(ids)  # (B, T)
    out[:, 0] = ids[:, 0]
    lengths = (ids != 0).sum(1).clamp(min=1)  # (B,)
    out[:, 1] = ids.gather(1, (lengths - 1).view(-1, 1)).squeeze(1)
    return out


def _empty_mask(mask: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(mask)  # (B, T)
    out[:, :2] = 1
    return out


def _absent_vitals(vitals: torch.Tensor) -> torch.Tensor:
    n = (vitals.shape[1] - 2) // 2
    out = torch.zeros_like(vitals)  # (B, V2)
    out[:, n : 2 * n] = 1.0  # every field missing
    return out


def resize_image(pixels: np.ndarray, size: int) -> torch.Tensor:
    """(H, W) array in [0, 1] -> (1, size, size) float32 by area interpolation (no aspect crop).

    A constant or non-finite image is handled: NaN/inf become 0, values are clipped to [0, 1].
    """
    if pixels.ndim != 2 or min(pixels.shape) < 1:
        raise ModelError(f"the model needs a 2-D grey-level image, got shape {pixels.shape}")
    arr = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    x = torch.from_numpy(np.clip(arr, 0.0, 1.0))[None, None]  # (1, 1, H, W)
    mode = "area" if min(arr.shape) >= size else "bilinear"
    kw = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=(size, size), mode=mode, **kw)[0]  # (1, S, S)


def normalise_vital(spec: VitalSpec, value: float) -> float:
    """One value -> dimensionless score (0 = middle of the reference range), clipped."""
    if spec.key in LOG_SCALED:
        z = math.log1p(max(value, 0.0)) - math.log1p(spec.ref_high)
    else:
        centre = (spec.ref_low + spec.ref_high) / 2
        half = max((spec.ref_high - spec.ref_low) / 2, 1e-6)
        z = (value - centre) / half
    return float(np.clip(z, -CLIP, CLIP))


def vitals_vector(vitals: dict[str, float] | None, sex: str | None) -> np.ndarray:
    """(2V + 2,) float32: normalised values (0 if missing), missing indicators, sex one-hot."""
    v = vitals or {}
    values = np.zeros(len(VITALS), np.float32)
    missing = np.ones(len(VITALS), np.float32)
    for i, spec in enumerate(VITALS):
        raw = v.get(spec.key)
        if raw is not None and math.isfinite(float(raw)):
            values[i] = normalise_vital(spec, float(raw))
            missing[i] = 0.0
    sex_oh = np.array([float(sex == s) for s in SEX_VALUES], np.float32)
    return np.concatenate([values, missing, sex_oh])


def model_modalities(case: Case) -> dict[str, bool]:
    """Modalities the model can use: like `Case.modalities`, but vitals need at least one number.

    Sex alone (e.g. from the DICOM header) says nothing about these diagnoses, so a case with
    sex but no measured vitals counts as having no vitals for routing.
    """
    mods = dict(case.modalities)
    mods["vitals"] = any(k in VITAL_KEYS for k in (case.vitals or {}))
    return mods


def featurize(cases: Sequence[Case], tokenizer: ReportTokenizer, cfg: MoEConfig) -> ModelInputs:
    """Turn cases into one batch of model inputs.

    Args:
        cases: de-identified cases from intake; each needs at least one modality.
        tokenizer: the model's report tokenizer (`LoadedModel.tokenizer`).
        cfg: the model config (image size, token length).

    Returns:
        A `ModelInputs` batch in case order.
    """
    if not cases:
        raise ModelError("no cases to featurize")
    s = cfg.image_size
    images, reports, vitals, presence = [], [], [], []
    for case in cases:
        mods = model_modalities(case)
        if not any(mods.values()):
            raise ModelError(f"case {case.case_id} has no image, report or vitals to diagnose from")
        img = resize_image(case.image.model_input, s) if mods["image"] else torch.zeros(1, s, s)
        images.append(img)
        reports.append(case.report if mods["report"] else "")
        vitals.append(vitals_vector(case.vitals, case.sex) if mods["vitals"] else vitals_vector(None, None))
        presence.append([float(mods[m]) for m in MODALITIES])
    ids, mask = tokenizer.encode(reports, cfg.max_tokens)
    return ModelInputs(
        image=torch.stack(images),  # (B, 1, S, S)
        input_ids=ids,
        attention_mask=mask,
        vitals=torch.from_numpy(np.stack(vitals)),  # (B, 2V + 2)
        presence=torch.tensor(presence, dtype=torch.float32),  # (B, 3)
    )


def concat_inputs(parts: Sequence[ModelInputs]) -> ModelInputs:
    """Concatenate batches along the case axis."""
    out = {}
    for f in fields(ModelInputs):
        vals = [getattr(p, f.name) for p in parts]
        out[f.name] = None if any(v is None for v in vals) else torch.cat(vals)
    return ModelInputs(**out)
