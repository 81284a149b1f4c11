"""`OnnxPredictor`: one ONNX Runtime session per graph (gate, each expert), created once.

The execution provider is decided once, at start-up: CUDA when this onnxruntime build offers it,
else CPU. `get_available_providers()` lists CUDA in the onnxruntime-gpu build even on a machine
without a GPU, so what a session really uses is read back from `session.get_providers()`.
`InferenceSession.run` is thread-safe, so one predictor serves every web user.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moe_app.errors import ModelError
from moe_app.model import ModelInputs
from moe_app.runtime.export import read_manifest
from moe_app.runtime.predictor import BasePredictor, ModelMeta, read_meta

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def cpu_threads() -> int:
    """Cores this process may use (cgroup/affinity aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """Providers to try, best first: CUDA when this build has it, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ModelError(f"this onnxruntime build has no {missing[0]}; available: {', '.join(available)}")
        return list(requested)
    return [CUDA, CPU] if CUDA in available else [CPU]


def session_options(threads: int | None = None) -> Any:
    """Full graph optimisation; intra-op threads = the cores we have; no spinning between runs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    # Seven small sessions run one after another: idle threads spinning after one session's run
    # would steal the cores the next session needs (measured slower on 2 cores).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def _preload_cuda_libraries() -> None:
    """Load CUDA/cuDNN from NVIDIA's pip wheels when installed (onnxruntime-gpu >= 1.21); harmless otherwise."""
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ort.preload_dlls()
        except Exception as err:  # missing libraries: the session then falls back to CPU, logged below
            log.debug("onnxruntime.preload_dlls failed: %s", err)


class OnnxPredictor(BasePredictor):
    """The production runtime: gate graph, then each selected expert's graph on its rows."""

    def __init__(self, meta: ModelMeta, graphs_dir: Path, *, providers: Sequence[str] | None = None,
                 threads: int | None = None, warmup: bool = True) -> None:
        import onnxruntime as ort

        super().__init__(meta)
        manifest = read_manifest(graphs_dir)
        if manifest is None or manifest.get("weights_sha256") != meta.weights_sha256:
            raise ModelError(f"the ONNX graphs in {graphs_dir} are missing or stale; run `moe-app export`")
        if not {"gate", *meta.cfg.experts} <= set(manifest.get("graphs", {})):
            raise ModelError(f"the ONNX graphs in {graphs_dir} do not cover this model's experts; run `moe-app export`")
        ort.set_default_logger_severity(3)  # onnxruntime-gpu without a GPU logs provider errors
        wanted = choose_providers(providers)
        if CUDA in wanted:
            _preload_cuda_libraries()
        opts = session_options(threads)
        self.graphs_dir = Path(graphs_dir)
        self.sessions: dict[str, Any] = {}
        self.inputs: dict[str, tuple[str, ...]] = {}
        for name in ("gate", *self.cfg.experts):
            entry = manifest["graphs"][name]
            try:
                session = ort.InferenceSession(str(self.graphs_dir / entry["file"]), sess_options=opts,
                                               providers=wanted)
            except Exception as err:  # onnxruntime raises its own untyped errors
                raise ModelError(f"cannot open the ONNX graph {entry['file']} ({err})") from None
            self.sessions[name] = session
            self.inputs[name] = tuple(i.name for i in session.get_inputs())
        used = {s.get_providers()[0] for s in self.sessions.values()}
        self.provider = CUDA if used == {CUDA} else CPU if used == {CPU} else "+".join(sorted(used))
        self.runtime = f"onnxruntime:{self.provider}"
        if CUDA in wanted and self.provider != CUDA:
            log.warning("CUDA was requested but ONNX Runtime runs on %s", self.provider)
        log.info("ONNX Runtime %s uses %s (%d intra-op threads)", ort.__version__, self.provider,
                 opts.intra_op_num_threads)
        self.manifest = manifest
        if warmup:
            self.warmup()

    @classmethod
    def load(cls, model_dir: Path, graphs_dir: Path, *, providers: Sequence[str] | None = None,
             threads: int | None = None) -> OnnxPredictor:
        return cls(read_meta(Path(model_dir)), graphs_dir, providers=providers, threads=threads)

    def warmup(self) -> None:
        """One run of every session, so the first clinician does not pay for lazy initialisation."""
        from moe_app.runtime.export import sample_inputs

        sample = sample_inputs(self.cfg, batch=1)
        for name, session in self.sessions.items():
            session.run(None, {n: sample[n].numpy() for n in self.inputs[name]})

    def select_rows(self, x: ModelInputs, rows: np.ndarray) -> ModelInputs:
        """Row selection in numpy: torch's threaded indexing costs more than a small expert."""
        if rows.size == len(x):
            return x
        picked = {f.name: None if getattr(x, f.name) is None else torch.from_numpy(getattr(x, f.name).numpy()[rows])
                  for f in fields(x)}
        return ModelInputs(**picked)

    def _run(self, name: str, x: ModelInputs) -> np.ndarray:
        feeds = {n: np.ascontiguousarray(getattr(x, n).numpy()) for n in self.inputs[name]}
        return self.sessions[name].run(None, feeds)[0]

    def gate_logits(self, x: ModelInputs) -> np.ndarray:
        return self._run("gate", x)  # (B, E)

    def expert_logits(self, name: str, x: ModelInputs) -> np.ndarray:
        return self._run(name, x)  # (B, C)
