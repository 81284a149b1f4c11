"""ONNX export: the gate and every expert as separate graphs, so unselected experts never run.

Each graph is one self-contained .onnx file (opset 18, dynamic batch axis) written with the
torch.onnx dynamo exporter; the TorchScript exporter is used only if dynamo fails on a graph,
and the manifest says which one produced each file. Graphs output raw logits: the calibration
temperature and the routing stay in Python (`predictor.py`), identical for both runtimes, so a
refitted temperature does not invalidate the graphs.

    <model_dir>/onnx/manifest.json   versions, opset, sha256 of the weights and of every graph
    <model_dir>/onnx/gate.onnx, <expert>.onnx
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moe_app.errors import ModelError
from moe_app.model import LoadedModel, MoEConfig, load_model
from moe_app.model.io import CONFIG, WEIGHTS
from moe_app.model.text import sha256_file

log = logging.getLogger(__name__)

GRAPHS_DIR = "onnx"
MANIFEST = "manifest.json"
OPSET = 18
FORMAT = 1  # manifest layout version
EXPORT_TOLERANCE = 1e-4  # max |ONNX - torch| logit difference accepted right after export
# Config fields that do not change the graphs (routing and calibration happen outside them).
_NOT_IN_GRAPHS = ("temperature", "gate_temperature", "top_k", "noise_std", "modality_dropout", "w_balance", "w_z", "w_expert")


def architecture_sha256(cfg: MoEConfig) -> str:
    """Hash of the config fields that shape the graphs."""
    raw = json.loads(cfg.to_json())
    for name in _NOT_IN_GRAPHS:
        raw.pop(name, None)
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()


def graph_modules(lm: LoadedModel) -> dict[str, nn.Module]:
    """Graph name -> module: "gate" then the experts in gate order."""
    return {"gate": lm.model.gate, **{name: lm.model.experts[name] for name in lm.cfg.experts}}


def sample_inputs(cfg: MoEConfig, batch: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """A small random batch of every model input (with padding in the reports)."""
    g = torch.Generator().manual_seed(seed)
    t = cfg.max_tokens
    lengths = torch.randint(2, t + 1, (batch,), generator=g)  # (B,)
    mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).long()  # (B, T)
    ids = torch.randint(1, max(cfg.vocab_size, 2), (batch, t), generator=g) * mask  # (B, T)
    return {
        "image": torch.rand(batch, 1, cfg.image_size, cfg.image_size, generator=g),  # (B, 1, S, S)
        "input_ids": ids,
        "attention_mask": mask,
        "vitals": torch.randn(batch, cfg.n_vitals_features, generator=g),  # (B, 2V + 2)
        "presence": torch.ones(batch, 3),  # (B, 3)
    }


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter: progress on stdout (it would corrupt `predict --json`), warnings, logs."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnx_ir",
                                              "onnxscript", "torch.fx.experimental.symbolic_shapes")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _export(module: nn.Module, names: tuple[str, ...], args: tuple[torch.Tensor, ...], path: Path,
            dynamo: bool) -> None:
    kwargs: dict[str, Any]
    if dynamo:
        batch = torch.export.Dim("batch", min=1, max=1 << 16)
        kwargs = {"dynamo": True, "dynamic_shapes": tuple({0: batch} for _ in names),
                  "external_data": False}
    else:
        kwargs = {"dynamo": False, "dynamic_axes": {n: {0: "batch"} for n in (*names, "logits")}}
    with _quiet():
        torch.onnx.export(module, args, str(path), input_names=list(names), output_names=["logits"],
                          opset_version=OPSET, verbose=False, **kwargs)


def export_graph(module: nn.Module, names: tuple[str, ...], sample: dict[str, torch.Tensor],
                 path: Path) -> str:
    """Export one graph and check it against torch. Returns the exporter used ("dynamo"|"torchscript")."""
    import onnx
    import onnxruntime as ort

    args = tuple(sample[n] for n in names)
    exporter = "dynamo"
    try:
        _export(module, names, args, path, dynamo=True)
    except Exception as err:  # the dynamo exporter raises many kinds; fall back once
        log.warning("dynamo export of %s failed (%s); using the TorchScript exporter", path.stem, err)
        exporter = "torchscript"
        _export(module, names, args, path, dynamo=False)
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: sample[n].numpy() for n in names})[0]
    with torch.inference_mode():
        want = module(*args).numpy()
    diff = float(np.abs(got - want).max())
    if not diff <= EXPORT_TOLERANCE:
        raise ModelError(f"the exported {path.stem} graph differs from PyTorch by {diff:.2e}")
    return exporter


def export_graphs(lm: LoadedModel, out_dir: Path) -> dict[str, Any]:
    """Export the gate and every expert into `out_dir` and write the manifest.

    Args:
        lm: the loaded model (eval mode).
        out_dir: folder to create (written in a temporary sibling, then renamed into place).

    Returns:
        The manifest.
    """
    import onnx
    import onnxruntime as ort
    import onnxscript

    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sample = sample_inputs(lm.cfg)
    graphs = {}
    try:
        for name, module in graph_modules(lm).items():
            names = tuple(module.input_names)
            exporter = export_graph(module.eval(), names, sample, tmp / f"{name}.onnx")
            graphs[name] = {"file": f"{name}.onnx", "sha256": sha256_file(tmp / f"{name}.onnx"),
                            "inputs": list(names), "outputs": ["logits"], "exporter": exporter}
        manifest = {
            "format": FORMAT,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {"torch": torch.__version__, "onnx": onnx.__version__,
                         "onnxscript": onnxscript.__version__, "onnxruntime": ort.__version__},
            "opset": OPSET,
            "weights_sha256": lm.weights_sha256,
            "architecture_sha256": architecture_sha256(lm.cfg),
            "experts": list(lm.cfg.experts),
            "graphs": graphs,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / ".gitignore").write_text("# derived from model.safetensors by `moe-app export`\n*\n")
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("exported %d ONNX graphs to %s", len(graphs), out_dir)
    return manifest


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        if not (dst / MANIFEST).is_file() and any(dst.iterdir()):
            raise ModelError(f"{dst} exists and is not an ONNX export folder; move it away")
        shutil.rmtree(dst)
    os.replace(src, dst)


def read_manifest(graphs_dir: Path) -> dict[str, Any] | None:
    """The manifest of an export folder, or None if there is none (or it is unreadable)."""
    try:
        return json.loads((Path(graphs_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def is_current(graphs_dir: Path, weights_sha256: str, cfg: MoEConfig, *, verify: bool = True) -> bool:
    """True if the folder holds graphs exported from exactly these weights and this architecture."""
    m = read_manifest(graphs_dir)
    if (m is None or m.get("format") != FORMAT or m.get("weights_sha256") != weights_sha256
            or m.get("architecture_sha256") != architecture_sha256(cfg)
            or set(m.get("graphs", {})) != {"gate", *cfg.experts}):
        return False
    for g in m["graphs"].values():
        path = Path(graphs_dir) / g["file"]
        if not path.is_file() or (verify and sha256_file(path) != g["sha256"]):
            log.warning("ONNX graph %s does not match its manifest; it will be re-exported", path.name)
            return False
    return True


def default_cache_dir() -> Path:
    from moe_app.config import load_config

    return load_config().paths.data_dir / "cache" / "onnx"


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def ensure_graphs(model_dir: Path, *, cache_dir: Path | None = None, force: bool = False) -> Path:
    """The folder of current ONNX graphs for a model, exporting them first if needed.

    Graphs live in `<model_dir>/onnx` when the model folder is writable, else in
    `<cache_dir>/<first 16 hex digits of the weights sha256>`. `force` re-exports even when
    current graphs exist.

    Raises:
        ModelError: the model cannot be loaded or exported.
    """
    model_dir = Path(model_dir)
    if not (model_dir / WEIGHTS).is_file() or not (model_dir / CONFIG).is_file():
        raise ModelError(f"the model folder {model_dir} has no weights; train one with `moe-app train`")
    weights_sha = sha256_file(model_dir / WEIGHTS)
    cfg = MoEConfig.from_json((model_dir / CONFIG).read_text())
    cache = (cache_dir or default_cache_dir()) / weights_sha[:16]
    if not force:
        for candidate in (model_dir / GRAPHS_DIR, cache):
            if is_current(candidate, weights_sha, cfg):
                return candidate
    target = model_dir / GRAPHS_DIR if _writable(model_dir) else cache
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("exporting ONNX graphs to %s (first start; takes a minute)", target)
    try:
        lm = load_model(model_dir)
        if lm.weights_sha256 != weights_sha:
            raise ModelError("the model weights changed while being exported; try again")
        export_graphs(lm, target)
    except ModelError:
        raise
    except Exception as err:  # exporter, checker or filesystem: the caller may fall back to torch
        raise ModelError(f"ONNX export failed ({type(err).__name__}: {err})") from err
    return target
