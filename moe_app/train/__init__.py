"""Training of the MoE: feature cache, training loop, calibration, abstention, evaluation,
baselines (dense, single-modality), report-encoder comparison and the model card.

data.py (case folders -> cached arrays) -> loop.py (seeded training, early stopping) ->
evaluate.py (metrics, temperature, abstention) -> run.py (everything for `moe-app train`) ->
report.py (rich tables, model card). encoders.py compares report encoders on hand-written text.
"""
