"""`moe-app bench`: latency, throughput, sparse-vs-dense and memory of the inference path.

Not a unit test: it measures this machine. Every figure is a median (p50) or a 95th percentile
over repeated runs after a warm-up; the end-to-end latency runs from the start of intake (DICOM
decode) to the JSON of the prediction; peak RSS is that of a separate `moe-app predict`
process, as a clinician's CLI call would use.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moe_app.errors import ModelError
from moe_app.runtime.bench_data import case_folders, stand_in_model, write_cr_case
from moe_app.runtime.predictor import BasePredictor, load_predictor

TARGETS = {"speedup": 2.0, "e2e_p50_ms": 150.0, "sparse_ratio": 0.5, "rss_mb": 1536.0}
PROVIDERS = {"auto": None, "cpu": ["CPUExecutionProvider"],
             "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


def timed(fn: Callable[[], object], repeats: int, warmup: int = 2) -> np.ndarray:
    """Wall-clock milliseconds of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        t = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t) * 1000.0
    return out


def stats(ms: np.ndarray) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 3), "p95": round(float(np.percentile(ms, 95)), 3),
            "mean": round(float(ms.mean()), 3), "n": int(ms.size)}


def expert_stage(p: BasePredictor, x: Any, ran: np.ndarray) -> None:
    """Run each expert on the rows marked in `ran` (B, E): the expert stage alone."""
    for i, name in enumerate(p.expert_names):
        rows = np.flatnonzero(ran[:, i])  # (n,)
        if rows.size:
            p.expert_logits(name, p.select_rows(x, rows))


def routing_masks(p: BasePredictor, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """(B, E) experts run by the sparse top-k model and by the dense one (every available expert)."""
    from moe_app.model import route

    available = p.available(x, None)  # (B, E)
    g = route(torch.from_numpy(p.gate_logits(x)), torch.from_numpy(available), p.cfg.top_k,
              temperature=p.cfg.gate_temperature)
    return g.weights.numpy() > 0, available


def cycle(fn: Callable[[Any], object], items: list[Any]) -> Callable[[], object]:
    """A no-argument call that applies `fn` to the next item, round robin."""
    state = {"i": 0}

    def call() -> object:
        state["i"] += 1
        return fn(items[state["i"] % len(items)])

    return call


def torch_one_thread(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    """Torch eager with one intra-op thread: on a busy 2-core machine OpenMP's spinning threads
    make the default far slower, so this is the fairer reference."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return stats(timed(fn, repeats))
    finally:
        torch.set_num_threads(before)


def e2e_latency(p: BasePredictor, folders: list[Path], key: bytes, repeats: int) -> np.ndarray:
    """Start of intake -> JSON of the prediction, one case at a time, cycling over `folders`."""
    from moe_app.intake import load_case_folder

    def one(folder: Path) -> None:
        started = time.perf_counter()
        case = load_case_folder(folder, key=key)
        json.dumps(p.predict([case], started=[started])[0].to_json())

    return timed(cycle(one, folders), repeats)


# Runs the CLI, then reports the process's own peak RSS. VmHWM belongs to the process's memory
# map since exec; ru_maxrss would also count the parent's RSS at fork time.
_PEAK_WRAPPER = """
import atexit, sys
def _peak():
    try:
        kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stderr.write(f"PEAK_RSS_KB={kb}\\n")
atexit.register(_peak)
sys.argv[0] = "moe-app"
from moe_app.cli import main
main()
"""


def predict_process(model_dir: Path, data_dir: Path, folders: list[Path]) -> dict[str, Any]:
    """Run `moe-app predict --json` in its own process: its peak RSS and its reported latencies."""
    env = dict(os.environ, MOE_APP_MODEL_DIR=str(model_dir), MOE_APP_DATA_DIR=str(data_dir))
    cmd = [sys.executable, "-c", _PEAK_WRAPPER, "predict", "--json", "--no-audit", "--runtime", "onnx",
           *map(str, folders)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    peaks = [int(line.split("=")[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB=")]
    lat = np.array([r["latency_ms"] for r in rows if "latency_ms" in r] or [np.nan])
    return {"peak_rss_mb": round(peaks[-1] / 1024, 1) if peaks else float("nan"), "exit_code": proc.returncode,
            "cases": len(rows), "errors": sum("error" in r for r in rows),
            "latency_ms": stats(lat[1:] if lat.size > 1 else lat)}  # the first one warms caches


def machine(provider: str) -> dict[str, Any]:
    import onnxruntime as ort

    gpu = ""
    if shutil.which("nvidia-smi") and "CUDA" in provider:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                           capture_output=True, text=True, check=False)
        gpu = q.stdout.strip().splitlines()[0] if q.stdout.strip() else ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    summary = f"{cores} CPU cores" + (f", {gpu}" if gpu else "") + f", {provider}"
    return {"summary": summary, "cores": cores, "gpu": gpu, "provider": provider,
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "onnxruntime": ort.__version__}


def run_bench(model_dir: Path, *, out: Path | None, provider: str = "auto", repeats: int = 30,
              cases_dir: Path | None = None, quiet: bool = False) -> dict[str, Any]:
    """Run every measurement, print the table and write the JSON.

    Args:
        model_dir: the trained model folder; without weights there, a randomly initialised model
            of its config (or the default one) stands in, and the results say so.
        out: where to write the JSON (None: do not write).
        provider: "auto", "cpu" or "cuda" for ONNX Runtime.
        repeats: timed runs per measurement.
        cases_dir: the sample cases (default: generated synthetic ones).
        quiet: do not print the table.
    """
    from moe_app.intake import load_case_folder
    from moe_app.model import count_parameters

    with tempfile.TemporaryDirectory(prefix="moe-bench-") as tmp:
        work = Path(tmp)
        trained = (Path(model_dir) / "model.safetensors").is_file()
        mdir = Path(model_dir) if trained else stand_in_model(work / "model", like=Path(model_dir))
        data_dir = work / "data"
        onnx = load_predictor(mdir, "onnx", cache_dir=data_dir / "cache" / "onnx", providers=PROVIDERS[provider])
        if provider == "cuda" and "CUDA" not in onnx.runtime:
            raise ModelError(f"--provider cuda was asked for, but ONNX Runtime runs on {onnx.runtime}")
        ref = load_predictor(mdir, "torch")
        runtimes: dict[str, BasePredictor] = {"onnx": onnx, "torch": ref}
        key = os.urandom(32)
        r: dict[str, Any] = {"machine": machine(onnx.runtime), "repeats": repeats}

        cr = write_cr_case(work / "cr2048")
        r["intake_2048_ms"] = stats(timed(lambda: load_case_folder(cr, key=key), max(5, repeats // 3), 1))
        cr_case = load_case_folder(cr, key=key)
        r["preprocess_2048_ms"] = stats(timed(lambda: onnx.featurize([cr_case]), repeats))

        x1 = onnx.featurize([cr_case])  # one case, every modality present
        folders, r["cases"] = case_folders(cases_dir, work)
        cases = [load_case_folder(f, key=key) for f in folders]
        singles = [onnx.featurize([c]) for c in cases]  # each routes to its own experts
        # One runtime after the other: torch's idle OpenMP threads keep spinning for a while and
        # would slow down whatever runs right after them.
        r["gate_ms"], r["expert_ms"], r["inference_1_ms"] = {}, {e: {} for e in onnx.expert_names}, {}
        for n, p in runtimes.items():
            r["gate_ms"][n] = stats(timed(lambda p=p: p.gate_logits(x1), repeats))
            for e in p.expert_names:
                r["expert_ms"][e][n] = stats(timed(lambda p=p, e=e: p.expert_logits(e, x1), repeats))
            r["inference_1_ms"][n] = stats(timed(cycle(lambda x, p=p: p.mixture(x), singles), repeats))
        r["inference_1_ms"]["torch_1_thread"] = torch_one_thread(cycle(ref.mixture, singles), repeats)
        r["e2e_ms"] = {n: stats(e2e_latency(p, folders, key, repeats)) for n, p in runtimes.items()}

        batch = [cases[i % len(cases)] for i in range(64)]
        r["throughput_64_cases_per_s"] = {
            n: round(64_000.0 / float(np.median(timed(lambda p=p: p.predict(batch), max(3, repeats // 5), 1))), 1)
            for n, p in runtimes.items()}

        x64 = onnx.featurize(batch)
        r["expert_stage_ms"] = {}
        for label, x in (("batch_1", x1), ("batch_64", x64)):
            sparse, dense = routing_masks(onnx, x)
            r["expert_stage_ms"][label] = {
                "top_k": stats(timed(lambda x=x, m=sparse: expert_stage(onnx, x, m), repeats)),
                "dense": stats(timed(lambda x=x, m=dense: expert_stage(onnx, x, m), repeats))}
        weights = torch.from_numpy(ref.mixture(x64).weights)
        counts = count_parameters(ref.model, weights)
        r["parameters"] = {"gate": counts["gate"], "experts_total": counts["experts_total"],
                           "experts": counts["experts"], "frozen": counts["frozen"],
                           "active_per_case_mean": round(float(counts["active_per_case"].mean()), 1)}
        r["predict_process"] = predict_process(mdir, data_dir, folders)
        r["model"] = {"trained": trained, "version": onnx.model_version, "dir": str(model_dir),
                      "summary": (f"trained checkpoint {onnx.model_version}" if trained else
                                  "randomly initialised model of the shipped config (no trained checkpoint)")
                      + f" · top-{onnx.cfg.top_k} of {len(onnx.expert_names)} experts · {r['cases']}"}
    r["table"] = summary_rows(r)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(r, indent=2) + "\n")
    if not quiet:
        from rich.console import Console

        from moe_app.runtime.tables import bench_table

        Console(width=max(Console().width, 120)).print(bench_table(r))
    return r


def summary_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The table: one row per figure, with the issue's target where there is one."""
    def pair(d: dict[str, Any], key: str = "p50") -> str:
        return f"{d['onnx'][key]:.1f} / {d['torch'][key]:.1f} ms"

    inf = r["inference_1_ms"]
    best_torch = min(inf["torch"]["p50"], inf.get("torch_1_thread", inf["torch"])["p50"])
    speedup = best_torch / max(inf["onnx"]["p50"], 1e-9)
    e2e = r["e2e_ms"]
    rows: list[dict[str, Any]] = [
        {"name": "Intake, 2048² CR DICOM + report + vitals (p50)", "value": f"{r['intake_2048_ms']['p50']:.1f} ms"},
        {"name": "Preprocess (featurize) that case (p50)", "value": f"{r['preprocess_2048_ms']['p50']:.1f} ms"},
        {"name": "Gate, 1 case: ONNX / torch (p50)", "value": pair(r["gate_ms"])},
    ]
    rows += [{"name": f"Expert {e}, 1 case: ONNX / torch", "value": pair(d)} for e, d in r["expert_ms"].items()]
    sp = r["expert_stage_ms"]
    ratio64 = sp["batch_64"]["top_k"]["p50"] / max(sp["batch_64"]["dense"]["p50"], 1e-9)
    ratio1 = sp["batch_1"]["top_k"]["p50"] / max(sp["batch_1"]["dense"]["p50"], 1e-9)
    params = r["parameters"]
    rss = r["predict_process"]["peak_rss_mb"]
    rows += [
        {"name": "Inference 1 sample case (gate + top-k experts): ONNX / torch", "value": pair(inf)},
        {"name": "Inference 1 sample case, torch eager with 1 thread",
         "value": f"{inf.get('torch_1_thread', inf['torch'])['p50']:.1f} ms"},
        {"name": "ONNX Runtime speed-up over the faster torch eager, 1 case", "value": f"{speedup:.2f}x",
         "target": f">= {TARGETS['speedup']:.0f}x", "met": speedup >= TARGETS["speedup"]},
        {"name": "End-to-end 1 sample case, ONNX p50 / p95", "value": f"{e2e['onnx']['p50']:.1f} / {e2e['onnx']['p95']:.1f} ms",
         "target": f"p50 <= {TARGETS['e2e_p50_ms']:.0f} ms", "met": e2e["onnx"]["p50"] <= TARGETS["e2e_p50_ms"]},
        {"name": "End-to-end 1 sample case, torch p50 / p95", "value": f"{e2e['torch']['p50']:.1f} / {e2e['torch']['p95']:.1f} ms"},
        {"name": "Batch-64 throughput: ONNX / torch",
         "value": f"{r['throughput_64_cases_per_s']['onnx']:.0f} / {r['throughput_64_cases_per_s']['torch']:.0f} cases/s"},
        {"name": "Expert stage, batch 64: top-k / dense", "value":
         f"{sp['batch_64']['top_k']['p50']:.1f} / {sp['batch_64']['dense']['p50']:.1f} ms ({ratio64:.2f}x)",
         "target": f"<= {TARGETS['sparse_ratio']}x", "met": ratio64 <= TARGETS["sparse_ratio"]},
        {"name": "Expert stage, 1 case: top-k / dense", "value":
         f"{sp['batch_1']['top_k']['p50']:.1f} / {sp['batch_1']['dense']['p50']:.1f} ms ({ratio1:.2f}x)"},
        {"name": "Expert parameters: active per case (mean) / total",
         "value": f"{params['active_per_case_mean'] / 1e3:.0f}k / {params['experts_total'] / 1e3:.0f}k"},
        {"name": "Peak RSS of `moe-app predict` (ONNX)", "value": f"{rss:.0f} MB",
         "target": f"<= {TARGETS['rss_mb']:.0f} MB", "met": rss <= TARGETS["rss_mb"]},
    ]
    return rows
