"""Audit store figures: audited predictions per second and verify time for 100,000 events.

Each prediction is its own committed, hash-chained append (no batching). Runs on SQLite
always and on PostgreSQL when a URL is given (a throw-away schema is created and dropped).

    .venv/bin/python bench/bench_audit.py [--postgres-url URL] [--json artifacts/bench_audit.json]

Targets (issue 6): >= 1,000 predictions/s on SQLite from one writer; verify of 100,000
events in under 5 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from moe_app.audit import Actor, AuditStore, queries
from moe_app.audit.chain import canonical_json, record_hash
from moe_app.audit.models import AuditEventRow, utc_now

USER = Actor("bench", role="clinician", client_address="10.0.0.1")
PAYLOAD = {
    "probabilities": {"normal": 0.05, "pneumonia": 0.81, "heart_failure": 0.08,
                      "pneumothorax": 0.03, "pulmonary_embolism": 0.03},
    "gate_weights": {"image": 0.61, "report": 0.27, "vitals": 0.12},
    "selected_experts": ["image", "report"],
    "contributions": {"image": 0.42, "report": 0.21, "vitals": 0.04},
    "input_hashes": {"image": "a" * 64, "report": "b" * 64, "vitals": "c" * 64},
}  # fmt: skip


def predict(store: AuditStore, i: int) -> None:
    store.record_prediction(
        USER, case_pseudonym=f"case-{i:08x}", model_version="1.0.0",
        model_weights_sha256="d" * 64, runtime="onnxruntime-cpu", **PAYLOAD,
    )  # fmt: skip


def single_writer(store: AuditStore, n: int) -> tuple[float, float]:
    """(appends per wall second, appends per CPU second of this process).

    The CPU figure is what an otherwise idle machine reaches when appends are CPU-bound (SQLite
    in WAL with synchronous=NORMAL does not fsync on commit); on a busy machine it is the
    honest one, since the wall figure then measures the other load.
    """
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        predict(store, i)
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def thread_writers(store: AuditStore, writers: int, n: int) -> float:
    def work(w: int) -> None:
        for i in range(n):
            predict(store, w * n + i)

    start = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(work, range(writers)))
    return writers * n / (time.perf_counter() - start)


def _process_writer(url: str, schema: str | None, n: int, start_at: float) -> float:
    with AuditStore.open(url, schema=schema) as store:
        time.sleep(max(0.0, start_at - time.time()))
        for i in range(n):
            predict(store, i)
        return time.time()


def process_writers(url: str, schema: str | None, writers: int, n: int) -> float:
    start_at = time.time() + 3.0
    with multiprocessing.get_context("spawn").Pool(writers) as pool:
        ends = pool.starmap(_process_writer, [(url, schema, n, start_at)] * writers)
    return writers * n / (max(ends) - start_at)


def seed_chain(store: AuditStore, n: int, batch: int = 5000) -> None:
    """Write a valid chain of n events fast (one transaction per batch; setup, not measured)."""
    table = AuditEventRow.__table__
    payload = canonical_json(PAYLOAD)
    with store.read_session() as session:
        base, prev = queries.head(session)
    for first in range(base + 1, base + n + 1, batch):
        rows = []
        for seq in range(first, min(first + batch, base + n + 1)):
            row: dict[str, Any] = {
                "seq": seq, "time": utc_now(), "action": "prediction.made",
                "type_code": "110103", "subtype_code": None, "action_code": "E",
                "actor": "bench", "actor_role": "clinician", "client_address": "10.0.0.1",
                "outcome": 0, "outcome_description": "predicted pneumonia",
                "case_pseudonym": f"case-{seq:08x}", "model_version": "1.0.0",
                "model_weights_sha256": "d" * 64, "runtime": "onnxruntime-cpu",
                "source_site": "bench", "app_version": "0.1.0", "payload": payload,
                "prev_hash": prev,
            }  # fmt: skip
            row["hash"] = prev = record_hash(row)
            rows.append(row)
        with store.engine.begin() as conn:
            conn.execute(table.insert(), rows)


def timed_verify(store: AuditStore) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, records verified)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = store.verify()
    assert result.ok, result
    return time.perf_counter() - start, time.process_time() - cpu, result.count


def run_backend(name: str, open_store: Callable[[], AuditStore], url: str, schema: str | None,
                args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"backend": name}
    with open_store() as store:
        predict(store, 0)  # warm-up: connection pool, statement caches
        out["single_writer_per_s"], out["single_writer_per_cpu_s"] = single_writer(
            store, args.single
        )
        out["threads8_per_s"] = thread_writers(store, 8, args.concurrent)
    out["processes8_per_s"] = process_writers(url, schema, 8, args.concurrent)
    with open_store() as store:
        assert store.verify().ok
        seed_chain(store, args.verify_n - store.count())
        out["verify_s"], out["verify_cpu_s"], out["verify_count"] = timed_verify(store)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=os.environ.get("MOE_APP_TEST_POSTGRES_URL"))
    parser.add_argument("--single", type=int, default=5000, help="appends, one writer")
    parser.add_argument("--concurrent", type=int, default=500, help="appends per writer (x8)")
    parser.add_argument("--verify-n", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=Path("artifacts/bench_audit.json"))
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/audit.db"
        results.append(run_backend("sqlite", lambda: AuditStore.open(url), url, None, args))
    if args.postgres_url:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        pg = args.postgres_url

        def open_pg() -> AuditStore:
            return AuditStore.open(pg, schema=schema)

        try:
            results.append(run_backend("postgresql", open_pg, pg, schema, args))
        finally:
            with open_pg() as store, store.engine.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")

    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'backend':<11} {'1 writer/s':>11} {'(per CPU s)':>12} {'8 threads/s':>12} "
          f"{'8 procs/s':>10} {'verify s':>9} {'(CPU s)':>8} {'events':>8}")  # fmt: skip
    for r in results:
        print(f"{r['backend']:<11} {r['single_writer_per_s']:>11.0f} "
              f"{r['single_writer_per_cpu_s']:>12.0f} {r['threads8_per_s']:>12.0f} "
              f"{r['processes8_per_s']:>10.0f} {r['verify_s']:>9.2f} {r['verify_cpu_s']:>8.2f} "
              f"{r['verify_count']:>8}")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
            "single": args.single, "concurrent_per_writer": args.concurrent}  # fmt: skip
    args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
