"""A real app server in a subprocess, for the browser and API tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD = "dr.test", "a long test password"
OTHER_USER, OTHER_PASSWORD = "dr.other", "another long password"


@dataclass
class RunningApp:
    url: str
    data_dir: Path
    env: dict[str, str]
    startup_s: float
    process: subprocess.Popen[bytes]
    log_path: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_app(data_dir: Path, *, with_users: bool = True, timeout_s: float = 90.0) -> RunningApp:
    """Start `python app.py` with its own data dir; return once it answers HTTP."""
    port = free_port()
    env = {
        **os.environ,
        "MOE_APP_DATA_DIR": str(data_dir),
        "MOE_APP_PORT": str(port),
        "MOE_APP_HOST": "127.0.0.1",
    }
    env.pop("MOE_APP_DATABASE_URL", None)
    if with_users:
        for name, pw in ((USER, PASSWORD), (OTHER_USER, OTHER_PASSWORD)):
            subprocess.run(
                [sys.executable, "-m", "moe_app.cli", "users", "add", name, "--password-stdin"],
                input=pw.encode() + b"\n", env=env, check=True, capture_output=True, cwd=REPO,
            )
    log_path = data_dir / "app.log"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=REPO, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = t0 + timeout_s
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited early:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/", timeout=2).status_code < 500:
                return RunningApp(url, data_dir, env, time.perf_counter() - t0, proc, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop_app(proc)
    raise RuntimeError(f"app did not start within {timeout_s} s:\n{log_path.read_text()[-3000:]}")


def stop_app(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
