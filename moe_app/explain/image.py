"""Image explanations: a class-activation map of each selected image expert, and the overlay on the film.

HiResCAM (the default, captum's `LayerGradientXActivation`) or Grad-CAM (Selvaraju et al. 2017,
"Grad-CAM: visual explanations from deep networks via gradient-based localization"; captum's
`LayerGradCam`) is computed on the expert's `last_conv` layer, for the expert's own
log-probability of the predicted diagnosis (its calibrated log-softmax, i.e. the opinion the
mixture actually uses), ReLU-ed (only evidence for the class), upsampled to the intake image
and scaled to [0, 1].

Why the log-probability rather than the raw logit: evidence every class shares ("this is a
chest film with two aerated lungs") raises all logits alike and does not change the opinion;
the gradient of log p_c removes it (d log p_c = d z_c - sum_j p_j d z_j), so the map shows what
favours this diagnosis over the others. On synthetic pneumothorax films this moves the map
towards the side with the air rim.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam, LayerGradientXActivation
from PIL import Image

from moe_app.errors import ModelError
from moe_app.explain.common import case_inputs, class_index, private_model, require_eval
from moe_app.intake.case import Case
from moe_app.model import EXPERTS, LoadedModel, ModelInputs
from moe_app.prediction import Prediction

METHODS: tuple[str, ...] = ("gradcam", "hirescam")
# What the UI shows. HiResCAM (gradient x activation per position, summed over channels) is the
# first-order contribution of each position to the expert's log-probability; Grad-CAM averages
# the gradient over positions first, which spreads evidence found on one side over both lungs
# (see the README's explanation figures).
DEFAULT_METHOD = "hirescam"
COLORMAP = "inferno"  # perceptually uniform, dark at 0 so cold regions leave the film visible


def image_experts(model: LoadedModel, pred: Prediction, include_cross_modal: bool = False) -> list[str]:
    """Selected image experts (and, if asked, cross-modal ones) with a Grad-CAM layer, best first."""
    if not pred.modalities.get("image", False):
        return []
    experts = model.model.experts
    wanted = ("image", "multimodal") if include_cross_modal else ("image",)
    return [n for n in pred.selected_experts
            if n in experts and EXPERTS[n].modality in wanted and "image" in experts[n].input_names
            and hasattr(experts[n], "last_conv")]


def gradcam(model: LoadedModel, name: str, x: ModelInputs, label_index: int,
            method: str = DEFAULT_METHOD) -> torch.Tensor:
    """Raw class-activation map of one expert at its last conv layer, (1, 1, h, w), ReLU-ed.

    Args:
        model: the loaded model.
        name: the expert.
        x: its inputs (batch of 1).
        label_index: the class whose log-probability is explained.
        method: "gradcam": ReLU(sum_k mean_ij(dy/dA_k) A_k) (captum `LayerGradCam`);
            "hirescam": ReLU(sum_k dy/dA_k * A_k) element-wise (captum
            `LayerGradientXActivation`; Draelos and Carin 2020, "Use HiResCAM instead of
            Grad-CAM"), which for a max-pooled head marks only where the gradient flows.
    """
    if method not in METHODS:
        raise ModelError(f"unknown heatmap method {method!r}; use one of {METHODS}")
    expert = model.model.experts[name]
    others = tuple(n for n in expert.input_names if n != "image")

    def forward(image: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        kwargs = dict(zip(others, rest, strict=True))
        return F.log_softmax(expert(image=image, **kwargs) / model.cfg.temperature, dim=-1)  # (B, C)

    extra = tuple(getattr(x, n) for n in others) or None
    with torch.enable_grad():
        if method == "gradcam":
            attr = LayerGradCam(forward, expert.last_conv).attribute(
                x.image, target=label_index, additional_forward_args=extra, relu_attributions=True)
        else:
            gxa = LayerGradientXActivation(forward, expert.last_conv).attribute(
                x.image, target=label_index, additional_forward_args=extra)  # (1, K, h, w)
            attr = torch.relu(gxa.sum(1, keepdim=True))  # (1, 1, h, w)
    return attr.detach()  # (1, 1, h, w)


def to_unit_map(cam: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """(1, 1, h, w) map -> (H, W) float32 in [0, 1]: bilinear upsampling, divided by its max.

    The model sees the whole image resized to a square (no crop), so stretching the map back
    to (H, W) puts each cell over the part of the image it came from. A map without positive
    evidence (all zero) stays all zero rather than being stretched into noise.
    """
    up = F.interpolate(cam.float(), size=shape, mode="bilinear", align_corners=False)[0, 0]  # (H, W)
    heat = torch.nan_to_num(up, nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0.0)
    top = float(heat.max())
    if top <= 0.0:
        return np.zeros(shape, np.float32)
    return (heat / top).clamp(0.0, 1.0).numpy().astype(np.float32)


def image_heatmaps(model: LoadedModel, case: Case, pred: Prediction, label: str | None = None,
                   include_cross_modal: bool = False, method: str = DEFAULT_METHOD) -> dict[str, np.ndarray]:
    """Class-activation heatmap (HiResCAM by default) of each selected image expert for the diagnosis.

    Args:
        model: the loaded model (eval mode).
        case: the case the prediction was made for.
        pred: its prediction (selected experts, diagnosis).
        label: explain this diagnosis instead of the predicted one.
        include_cross_modal: also map the image branch of a selected cross-modal expert.
        method: "hirescam" (default) or "gradcam", see `gradcam`.

    Returns:
        expert name -> (H, W) float32 in [0, 1], H, W = `case.image.model_input.shape`, in
        order of gate weight; empty when no selected image expert.
    """
    require_eval(model)
    names = image_experts(model, pred, include_cross_modal)
    if not names or case.image is None:
        return {}
    shape: tuple[int, int] = tuple(case.image.model_input.shape[:2])  # type: ignore[assignment]
    with private_model(model) as own:
        x = case_inputs(own, case)
        c = class_index(own, label or pred.diagnosis)
        return {n: to_unit_map(gradcam(own, n, x, c, method), shape) for n in names}


@lru_cache(maxsize=4)
def colormap_lut(name: str = COLORMAP) -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colormap (matplotlib comes with captum)."""
    from matplotlib import colormaps

    rgba = colormaps[name](np.linspace(0.0, 1.0, 256))  # (256, 4) floats
    return (rgba[:, :3] * 255.0 + 0.5).astype(np.uint8)


def _resize(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if heatmap.shape == shape:
        return heatmap
    img = Image.fromarray(heatmap.astype(np.float32), mode="F")
    return np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.BILINEAR), dtype=np.float32)


def overlay(display: np.ndarray, heatmap: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """Blend a heatmap over a display image.

    Each pixel's blend weight is `opacity * heat`, so regions without evidence show the film
    unchanged and the strongest evidence is drawn at `opacity`.

    Args:
        display: (H, W) or (H, W, 3) uint8 display image (already windowed).
        heatmap: (h, w) values in [0, 1] (resized to (H, W) bilinearly; NaN counts as 0).
        opacity: 0 (film only) to 1 (heatmap only at the hottest pixels).

    Returns:
        (H, W, 3) uint8 RGB.
    """
    if display.ndim == 2:
        rgb = np.repeat(display[:, :, None], 3, axis=2)  # (H, W, 3)
    elif display.ndim == 3 and display.shape[2] in (3, 4):
        rgb = display[:, :, :3]
    else:
        raise ModelError(f"cannot overlay on an image of shape {display.shape}; expected (H, W) or (H, W, 3)")
    if heatmap.ndim != 2:
        raise ModelError(f"a heatmap must be 2-D, got shape {heatmap.shape}")
    a = float(np.clip(opacity if np.isfinite(opacity) else 0.0, 0.0, 1.0))
    heat = np.clip(np.nan_to_num(_resize(heatmap, rgb.shape[:2]), nan=0.0), 0.0, 1.0)  # (H, W)
    colour = colormap_lut()[(heat * 255.0 + 0.5).astype(np.uint8)].astype(np.float32)  # (H, W, 3)
    alpha = (a * heat)[:, :, None]  # (H, W, 1)
    out = (1.0 - alpha) * rgb.astype(np.float32) + alpha * colour
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
