"""`TorchPredictor`: the PyTorch reference, the model's own forward pass in inference mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from moe_app.errors import ModelError
from moe_app.model import LoadedModel, ModelInputs, load_model
from moe_app.runtime.postprocess import Mixture
from moe_app.runtime.predictor import BasePredictor, ModelMeta


class TorchPredictor(BasePredictor):
    """Runs `MoEModel` eagerly on the CPU. Thread-safe: the model is only read, never trained."""

    def __init__(self, lm: LoadedModel) -> None:
        super().__init__(ModelMeta(cfg=lm.cfg, tokenizer=lm.tokenizer, abstention=lm.abstention,
                                   weights_sha256=lm.weights_sha256, model_dir=lm.model_dir))
        self.lm = lm
        self.model = lm.model.eval()
        self.runtime = "torch:cpu"

    @classmethod
    def load(cls, model_dir: Path) -> TorchPredictor:
        try:
            return cls(load_model(Path(model_dir)))
        except (RuntimeError, ValueError, KeyError) as err:  # load_state_dict shape mismatches
            raise ModelError(f"the weights in {model_dir} do not fit this version of the model code "
                             f"({type(err).__name__}); re-train or install the matching app version") from None

    def gate_logits(self, x: ModelInputs) -> np.ndarray:
        with torch.inference_mode():
            return self.model.gate(**x.kwargs(self.model.gate.input_names)).numpy()  # (B, E)

    def expert_logits(self, name: str, x: ModelInputs) -> np.ndarray:
        with torch.inference_mode():
            return self.model.run_expert(name, x).numpy()  # (B, C)

    def mixture(self, x: ModelInputs, *, top_k: int | None = None,
                expert_mask: np.ndarray | None = None, dense: bool = False) -> Mixture:
        """The model's own sparse forward pass (the reference the ONNX path is tested against)."""
        self.available(x, expert_mask)  # same error as the ONNX path when nothing is left
        mask = None if expert_mask is None else torch.from_numpy(np.asarray(expert_mask, bool))
        with torch.inference_mode():
            out = self.model(x, top_k=self._k(top_k), expert_mask=mask, dense=dense)
        return Mixture(probs=out.probs.numpy(), gate_probs=out.gate_probs.numpy(),
                       weights=out.weights.numpy(), selected=out.selected.numpy(),
                       expert_probs=out.expert_probs.numpy(), ran=out.ran.numpy())
