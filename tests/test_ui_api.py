"""The programmatic API and the web server's safety rules, against the real running app."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from moe_app.config import load_config
from moe_app.labels import LABELS
from tests.app_server import OTHER_PASSWORD, OTHER_USER, PASSWORD, USER


def _sample_case() -> Path:
    for folder in sorted(load_config().paths.sample_cases_dir.iterdir()):
        if folder.is_dir() and any(p.suffix == ".dcm" for p in folder.iterdir()) and (folder / "report.txt").exists():
            return folder
    raise AssertionError("no sample case with an image and a report")


def _login(url: str, user: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    res = client.post("/login", data={"username": user, "password": password})
    assert res.status_code == 200, res.text
    return client


def test_predict_case_endpoint_returns_the_predict_json(running_app: object, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    case = _sample_case()
    dicom = next(p for p in case.iterdir() if p.suffix == ".dcm")
    vitals = (case / "vitals.json").read_text() if (case / "vitals.json").exists() else "{}"
    client = Client(running_app.url, auth=(USER, PASSWORD), download_files=False, verbose=False)  # type: ignore[attr-defined]
    out = client.predict([handle_file(str(dicom))], (case / "report.txt").read_text(), vitals, api_name="/predict_case")
    for key in ("case", "diagnosis", "probabilities", "gating", "selected_experts", "experts", "contributions", "modalities", "uncertain", "model_version", "runtime", "latency_ms"):
        assert key in out, key
    assert out["diagnosis"] in LABELS
    assert out["diagnosis"] == max(out["probabilities"], key=out["probabilities"].get)
    assert abs(sum(out["gating"].values()) - 1) < 1e-6
    assert all(out["gating"][e] > 0 for e in out["selected_experts"])
    for label in LABELS:
        total = sum(c[label] for c in out["contributions"].values())
        assert abs(total - out["probabilities"][label]) < 1e-5


def test_api_refuses_unauthenticated_requests(running_app: object) -> None:
    url = running_app.url  # type: ignore[attr-defined]
    res = httpx.post(f"{url}/gradio_api/call/predict_case", json={"data": [[], "no pneumothorax", "{}"]}, timeout=30)
    assert res.status_code in (401, 403)
    res = httpx.get(f"{url}/config", timeout=30)
    assert res.status_code in (401, 403) or "predict_case" not in res.text
    from gradio_client import Client

    with pytest.raises(Exception):  # noqa: B017 - the client raises its own error types
        Client(url, download_files=False, verbose=False)
    with pytest.raises(Exception):  # noqa: B017
        Client(url, auth=(USER, "wrong password"), download_files=False, verbose=False)


def test_uploaded_file_is_gone_after_the_run(running_app: object) -> None:
    """Another user cannot fetch the first user's upload once the run is over."""
    url = running_app.url  # type: ignore[attr-defined]
    first, second = _login(url, USER, PASSWORD), _login(url, OTHER_USER, OTHER_PASSWORD)
    dicom = next(p for p in _sample_case().iterdir() if p.suffix == ".dcm")
    res = first.post("/gradio_api/upload", files={"files": (dicom.name, dicom.read_bytes(), "application/dicom")})
    assert res.status_code == 200, res.text
    server_path = res.json()[0]
    filedata = {"path": server_path, "orig_name": dicom.name, "meta": {"_type": "gradio.FileData"}}
    res = first.post("/gradio_api/call/predict_case", json={"data": [[filedata], "", "{}"]})
    assert res.status_code == 200, res.text
    event_id = res.json()["event_id"]
    stream = first.get(f"/gradio_api/call/predict_case/{event_id}").text
    assert "event: complete" in stream, stream[-500:]
    result = json.loads(stream.split("data:", 2)[-1].strip())[0]
    assert result["modalities"]["image"] is True
    for client in (second, first):
        fetched = client.get(f"/gradio_api/file={server_path}")
        assert fetched.status_code in (403, 404), fetched.status_code
    assert not Path(server_path).exists()
