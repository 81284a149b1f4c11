"""The multimodal Mixture-of-Experts model.

Public API (stable; used by runtime, explanation and UI):

    from moe_app.model import load_model, featurize, EXPERTS, count_parameters

    lm = load_model(Path("assets/model"))            # LoadedModel, model in eval mode
    x = featurize(cases, lm.tokenizer, lm.cfg)         # ModelInputs batch
    with torch.no_grad():
        out = lm.model(x)                              # MoEOutput (sparse top-k)
    out.probs            # (B, C) calibrated mixture probabilities, labels in lm.cfg.labels
    out.gate_logits      # (B, E) masked router logits; out.gate_probs (B, E) full softmax
    out.weights          # (B, E) renormalised top-k weights, exactly 0 for unselected experts
    out.selected         # (B, k) selected expert indices, best first, -1 = fewer available
    out.expert_probs     # (B, E, C) calibrated, 0 where out.ran is False (expert not run)
    out.contributions    # (B, E, C) weights * expert_probs; .sum(1) == probs
    lm.abstention.uncertain(out.probs)                 # (B,) bool, the model card's rule

    lm.model(x, top_k=1)                               # another k
    lm.model(x, expert_mask=torch.tensor([...]))       # (E,) or (B, E) bool: what-if removal
    lm.model(x, dense=True)                            # every available expert, full softmax
    lm.model.expert_probs(lm.model.run_expert("vitals_labs", x))  # opinion of an unused expert

Files are read only by io.py (model folders) and text.py (tokenizer, pretrained encoder
folders); featurize works on in-memory `Case` objects.

Experts: `lm.model.experts[name]`, with `input_names` (the `ModelInputs` fields it reads;
`expert(**x.kwargs(expert.input_names))` returns logits (B, C)); image experts have
`last_conv` (Grad-CAM target); report experts have `embeddings` (nn.Embedding) and
`forward_from_embeddings(embeds, attention_mask)` (Integrated Gradients). The gate is
`lm.model.gate(**x.kwargs(gate.input_names))` -> raw logits (B, E);
`route(logits, lm.model.availability(x.presence), k)` masks unavailable experts (-inf),
softmaxes, takes top-k and renormalises (what `lm.model(x)` does in eval mode). Calibration: expert
logits are divided by `lm.cfg.temperature` before their softmax (see moe.py), so exported
expert graphs must do the same. `EXPERTS[name]` gives title, modality, requires, description.
"""

from __future__ import annotations

from moe_app.model.config import MoEConfig, TrainConfig
from moe_app.model.experts import EXPERTS, ExpertSpec
from moe_app.model.features import ModelInputs, featurize
from moe_app.model.gate import GateOutput, route
from moe_app.model.io import AbstentionRule, LoadedModel, load_model, save_model
from moe_app.model.moe import MoEModel, MoEOutput, count_parameters

__all__ = [
    "EXPERTS", "AbstentionRule", "ExpertSpec", "GateOutput", "LoadedModel", "MoEConfig", "MoEModel",
    "MoEOutput", "ModelInputs", "TrainConfig", "count_parameters", "featurize", "load_model", "route",
    "save_model",
]
