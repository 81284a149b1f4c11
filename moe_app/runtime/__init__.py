"""Fast local inference: ONNX export, the ONNX Runtime predictor and the PyTorch reference.

    from moe_app.runtime import load_predictor

    predictor = load_predictor(Path("assets/model"), runtime="auto")   # or "onnx" / "torch"
    [prediction] = predictor.predict([case], top_k=2)
    predictor.what_if(case, removed_experts=("image_shape",), removed_modalities=("report",))
    predictor.expert_opinion(case, "vitals_labs")   # an unselected expert, for display only
    predictor.runtime                                # "onnxruntime:CPUExecutionProvider" | "torch:cpu"

The ONNX Runtime and torch modules are imported only by the predictor that needs them.
"""

from __future__ import annotations

from moe_app.runtime.predictor import BasePredictor, Predictor, load_predictor

__all__ = ["BasePredictor", "Predictor", "load_predictor"]
