"""Concurrent writers (threads and processes) and a writer killed mid-append."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from moe_app.audit import AuditStore, EventFilter, NewEvent
from moe_app.audit.events import Actor
from tests.conftest_audit import append_worker, audit_url, crash_worker, fill, fresh_store

__all__ = ["audit_url", "fresh_store"]  # fixtures used by name
PER_WRITER = 20


def _context() -> multiprocessing.context.BaseContext:
    """fork where there is one: each child still opens its own engine and connections, and
    forking skips re-importing everything (seconds per child on a busy machine)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def test_eight_threads_lose_nothing(fresh_store: AuditStore) -> None:
    def work(worker: int) -> None:
        for i in range(PER_WRITER):
            fresh_store.append(NewEvent(action="case.submitted", actor=f"t{worker}",
                                        payload={"w": worker, "i": i}))  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    result = fresh_store.verify()
    assert result.ok and result.count == 8 * PER_WRITER
    events = fresh_store.list_events(Actor("auditor"), EventFilter(action="case.submitted"),
                                     limit=1000)  # fmt: skip
    assert {(e.payload["w"], e.payload["i"]) for e in events} == {
        (w, i) for w in range(8) for i in range(PER_WRITER)
    }
    assert _switches([e.actor for e in events]) > 7, "writers did not overlap"


def test_four_processes_lose_nothing(audit_url: str, tmp_path: Path) -> None:
    # The children open (and migrate) the store themselves, all at once.
    context = _context()
    with context.Pool(4) as pool:
        jobs = [(audit_url, w, PER_WRITER, str(tmp_path), 4) for w in range(4)]
        done = pool.starmap(append_worker, jobs)
    assert done == [PER_WRITER] * 4
    with AuditStore.open(audit_url) as store:
        result = store.verify()
        assert result.ok and result.count == 4 * PER_WRITER
        events = store.list_events(Actor("auditor"), EventFilter(action="case.submitted"),
                                   limit=1000)  # fmt: skip
        assert {(e.source_site, e.payload["i"]) for e in events} == {
            (f"proc-{w}", i) for w in range(4) for i in range(PER_WRITER)
        }
        assert _switches([e.source_site for e in events]) > 3, "writers did not overlap"


def _switches(writers: list[str]) -> int:
    return sum(a != b for a, b in zip(writers, writers[1:], strict=False))


def test_process_killed_mid_append_leaves_valid_chain(
    fresh_store: AuditStore, audit_url: str
) -> None:
    fill(fresh_store, 3)
    child = _context().Process(target=crash_worker, args=(audit_url,))
    child.start()
    child.join(60)
    assert child.exitcode == 3  # died after its INSERT, before COMMIT
    assert fresh_store.count() == 3
    assert fresh_store.append(NewEvent(action="app.started", actor="moe-app")).seq == 4
    assert fresh_store.verify().ok
