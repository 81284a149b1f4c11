"""`moe-app predict` and `moe-app export`, invoked as a user would (typer's CliRunner)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moe_app.cli import app
from moe_app.runtime.commands import find_cases, is_case_folder
from tests import conftest_runtime as rt
from tests.conftest_runtime import synth_folders

# Fixtures shared by the runtime test modules (their builders are cached: one export per run).
exported_graphs, tiny_model_dir = rt.exported_graphs, rt.tiny_model_dir

CONTRACT_KEYS = ["case", "diagnosis", "probabilities", "gating", "selected_experts", "experts",
                 "contributions", "modalities", "uncertain", "model_version", "runtime", "latency_ms"]


@pytest.fixture
def case_root(tmp_path: Path) -> Path:
    """A folder of case folders: three synthetic cases and one that cannot be read."""
    root = tmp_path / "cases"
    for src in synth_folders()[:3]:
        shutil.copytree(src, root / src.name)
    bad = root / "zz-broken"
    bad.mkdir()
    (bad / "image.dcm").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(256))
    return root


@pytest.fixture
def model_env(tiny_model_dir: Path, exported_graphs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOE_APP_MODEL_DIR", str(tiny_model_dir))
    db = tmp_path / "audit.db"
    monkeypatch.setenv("MOE_APP_DATABASE_URL", f"sqlite:///{db}")
    return db


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_predict_json_gives_one_contract_object_per_case_and_goes_on_after_a_failure(case_root, model_env):
    result = CliRunner().invoke(app, ["predict", str(case_root), "--json"])
    assert result.exit_code == 1, result.output
    rows = _lines(result.stdout)
    assert [r["case"] for r in rows] == sorted(p.name for p in case_root.iterdir())
    good, bad = rows[:3], rows[3]
    for row in good:
        assert list(row)[: len(CONTRACT_KEYS)] == CONTRACT_KEYS, row
        assert row["runtime"] == "onnxruntime:CPUExecutionProvider"
        assert sum(row["gating"].values()) == pytest.approx(1.0, abs=1e-5)
        assert row["latency_ms"] > 0
    assert set(bad) == {"case", "error"} and bad["error"]


def test_every_prediction_and_failure_is_audited_as_the_cli_user(case_root, model_env):
    from moe_app.audit import Actor, AuditStore, EventFilter

    result = CliRunner().invoke(app, ["predict", str(case_root), "--json"])
    assert result.exit_code == 1
    store = AuditStore.open(f"sqlite:///{model_env}")
    try:
        viewer = Actor("test", role="operator")
        made = store.list_events(viewer, EventFilter(action="prediction.made"))
        failed = [e for action in ("case.rejected", "prediction.failed")
                  for e in store.list_events(viewer, EventFilter(action=action))]
    finally:
        store.close()
    assert len(made) == 3 and len(failed) == 1
    assert failed[0].outcome == 4  # the unreadable case: refused at intake
    assert {e.actor for e in made + failed} == {f"cli:{getpass.getuser()}"}
    assert {e.runtime for e in made} == {"onnxruntime:CPUExecutionProvider"}


def test_no_audit_writes_no_store(case_root, model_env):
    result = CliRunner().invoke(app, ["predict", str(case_root / "zz-broken"), "--no-audit", "--json"])
    assert result.exit_code == 1
    assert not model_env.exists()


def test_predict_torch_runtime_and_top_k(case_root, model_env):
    one = sorted(case_root.iterdir())[0]
    result = CliRunner().invoke(app, ["predict", str(one), "--json", "--runtime", "torch", "--top-k", "1",
                                      "--no-audit"])
    assert result.exit_code == 0, result.output
    [row] = _lines(result.stdout)
    assert row["runtime"] == "torch:cpu" and len(row["selected_experts"]) == 1


def test_predict_prints_a_table_without_json(case_root, model_env):
    result = CliRunner().invoke(app, ["predict", str(case_root), "--no-audit"])
    assert result.exit_code == 1
    assert "Predictions" in result.stdout and "zz-broken" in result.stdout
    assert not result.stdout.lstrip().startswith("{")


@pytest.mark.parametrize("args", [["--runtime", "tensorrt"], ["--top-k", "0"]])
def test_predict_rejects_bad_options(case_root, model_env, args):
    result = CliRunner().invoke(app, ["predict", str(case_root), "--no-audit", *args])
    assert result.exit_code == 2


def test_predict_without_a_model_exits_2(case_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MOE_APP_MODEL_DIR", str(tmp_path / "no-model"))
    result = CliRunner().invoke(app, ["predict", str(case_root), "--no-audit"])
    assert result.exit_code == 2 and "train" in result.output


def test_case_discovery(case_root):
    case = sorted(case_root.iterdir())[0]
    assert is_case_folder(case) and not is_case_folder(case_root)
    assert find_cases([case]) == [case]
    assert find_cases([case_root]) == sorted(case_root.iterdir())


def test_export_command_writes_graphs_and_manifest(tiny_model_dir, exported_graphs, tmp_path, monkeypatch):
    from moe_app.runtime import export as export_mod

    def fake_export(lm, out):  # the real export runs once per test session (see conftest_runtime)
        shutil.copytree(exported_graphs, out)
        return json.loads((out / "manifest.json").read_text())

    monkeypatch.setattr(export_mod, "export_graphs", fake_export)
    out = tmp_path / "graphs"
    result = CliRunner().invoke(app, ["export", "--model-dir", str(tiny_model_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file() and "gate" in result.stdout


def test_export_without_a_model_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["export", "--model-dir", str(tmp_path)])
    assert result.exit_code == 2 and "train" in result.output


def test_latency_runs_from_the_start_of_intake(case_root, model_env, monkeypatch):
    import time

    import moe_app.intake as intake

    real = intake.load_case_folder

    def slow_intake(*args, **kwargs):
        time.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(intake, "load_case_folder", slow_intake)
    one = sorted(case_root.iterdir())[0]
    result = CliRunner().invoke(app, ["predict", str(one), "--json", "--no-audit"])
    assert result.exit_code == 0, result.output
    assert _lines(result.stdout)[0]["latency_ms"] >= 200.0
