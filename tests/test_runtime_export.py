"""The ONNX export (graphs, manifest, staleness), provider choice and `load_predictor`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from moe_app.errors import ConfigError, ModelError
from moe_app.model.text import sha256_file
from moe_app.runtime import export as export_mod
from moe_app.runtime import load_predictor
from moe_app.runtime import onnx as onnx_mod
from moe_app.runtime.onnx import OnnxPredictor
from moe_app.runtime.torch import TorchPredictor
from tests import conftest_runtime as rt

# Fixtures shared by the runtime test modules (their builders are cached: one export per run).
exported_graphs, onnx_predictor, tiny_model_dir = rt.exported_graphs, rt.onnx_predictor, rt.tiny_model_dir


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("onnx"))
    return dst


def test_manifest_records_versions_opset_and_hashes(exported_graphs, tiny_model_dir):
    m = json.loads((exported_graphs / "manifest.json").read_text())
    assert m["opset"] >= 17
    assert set(m["versions"]) >= {"torch", "onnx", "onnxruntime"}
    assert m["weights_sha256"] == sha256_file(tiny_model_dir / "model.safetensors")
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert list(m["graphs"]) == ["gate", *cfg["experts"]]
    for g in m["graphs"].values():
        assert sha256_file(exported_graphs / g["file"]) == g["sha256"]
        assert g["exporter"] == "dynamo"


def test_each_graph_is_one_self_contained_file_with_a_dynamic_batch_axis(exported_graphs):
    m = json.loads((exported_graphs / "manifest.json").read_text())
    files = {p.name for p in exported_graphs.iterdir()}
    assert files == {"manifest.json", ".gitignore", *(g["file"] for g in m["graphs"].values())}
    for g in m["graphs"].values():
        model = onnx.load(str(exported_graphs / g["file"]), load_external_data=False)
        assert model.opset_import[0].version >= 17
        assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
        for value in (*model.graph.input, *model.graph.output):
            first = value.type.tensor_type.shape.dim[0]
            assert first.dim_param and not first.HasField("dim_value"), (g["file"], value.name)


def test_graphs_in_the_model_dir_are_reused_and_checked(exported_graphs, tiny_model_dir, tmp_path, monkeypatch):
    model = _copy_model(tiny_model_dir, tmp_path / "model")
    shutil.copytree(exported_graphs, model / "onnx")
    monkeypatch.setattr(export_mod, "export_graphs", lambda *a, **k: pytest.fail("should not re-export"))
    assert export_mod.ensure_graphs(model, cache_dir=tmp_path / "cache") == model / "onnx"


def test_a_tampered_graph_is_not_current(exported_graphs, tiny_model_dir, tmp_path):
    model = _copy_model(tiny_model_dir, tmp_path / "model")
    shutil.copytree(exported_graphs, model / "onnx")
    cfg = OnnxPredictor.load(model, model / "onnx").cfg
    sha = sha256_file(model / "model.safetensors")
    assert export_mod.is_current(model / "onnx", sha, cfg)
    with (model / "onnx" / "gate.onnx").open("ab") as f:
        f.write(b"\0")
    assert not export_mod.is_current(model / "onnx", sha, cfg)
    assert not export_mod.is_current(exported_graphs, "0" * 64, cfg)  # other weights


def test_a_read_only_model_dir_uses_the_cache_dir(exported_graphs, tiny_model_dir, tmp_path, monkeypatch):
    model = _copy_model(tiny_model_dir, tmp_path / "model")
    sha = sha256_file(model / "model.safetensors")
    shutil.copytree(exported_graphs, tmp_path / "cache" / sha[:16])
    monkeypatch.setattr(export_mod, "_writable", lambda folder: False)
    monkeypatch.setattr(export_mod, "export_graphs", lambda *a, **k: pytest.fail("should not re-export"))
    p = load_predictor(model, "auto", cache_dir=tmp_path / "cache")
    assert isinstance(p, OnnxPredictor) and p.graphs_dir == tmp_path / "cache" / sha[:16]


def test_stale_graphs_are_refused(exported_graphs, tiny_model_dir, tmp_path):
    model = _copy_model(tiny_model_dir, tmp_path / "model")
    stale = shutil.copytree(exported_graphs, tmp_path / "stale")
    m = json.loads((stale / "manifest.json").read_text())
    m["weights_sha256"] = "0" * 64
    (stale / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match="stale"):
        OnnxPredictor.load(model, stale)


def test_auto_falls_back_to_torch_when_export_fails(tiny_model_dir, tmp_path, monkeypatch):
    model = _copy_model(tiny_model_dir, tmp_path / "model")

    def broken(*args, **kwargs):
        raise ModelError("exporter broke")

    monkeypatch.setattr(export_mod, "ensure_graphs", broken)
    assert isinstance(load_predictor(model, "auto"), TorchPredictor)
    with pytest.raises(ModelError, match="exporter broke"):
        load_predictor(model, "onnx")


@pytest.mark.parametrize("runtime", ["tensorrt", "", "ONNX"])
def test_unknown_runtime_is_a_config_error(tiny_model_dir, runtime):
    with pytest.raises(ConfigError):
        load_predictor(tiny_model_dir, runtime)


@pytest.mark.parametrize("runtime", ["torch", "onnx", "auto"])
def test_missing_model_is_a_model_error(tmp_path, runtime):
    with pytest.raises(ModelError, match="train"):
        load_predictor(tmp_path / "nothing-here", runtime)


def test_cuda_is_tried_only_when_the_build_offers_it(monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert onnx_mod.choose_providers() == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert onnx_mod.choose_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(ModelError, match="TensorrtExecutionProvider"):
        onnx_mod.choose_providers(["TensorrtExecutionProvider"])


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_the_runtime_reports_the_provider_sessions_really_use(tiny_model_dir, exported_graphs, monkeypatch):
    """A GPU build lists CUDA even without a GPU: what counts is what the sessions got."""
    monkeypatch.setattr(onnx_mod, "choose_providers",
                        lambda requested=None: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    p = OnnxPredictor.load(tiny_model_dir, exported_graphs)
    assert p.runtime == "onnxruntime:CPUExecutionProvider"
    assert all(s.get_providers()[0] == "CPUExecutionProvider" for s in p.sessions.values())


def test_sessions_use_full_optimisation_and_the_machines_cores(onnx_predictor):
    import onnxruntime as ort

    opts = onnx_predictor.sessions["gate"].get_session_options()
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert opts.intra_op_num_threads == onnx_mod.cpu_threads()
