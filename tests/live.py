"""A real server process on a temporary SQLite database, for peers that need a socket (browser, schemathesis)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LiveServer:
    url: str
    info: dict
    process: subprocess.Popen
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_live_server() -> LiveServer:
    data_dir = Path(tempfile.mkdtemp(prefix="telesante-live-"))
    env = {
        **os.environ,
        "TELESANTE_DATA_DIR": str(data_dir),
        "TELESANTE_SECRET_KEY": "live-test-secret-key-0123456789",
        "TELESANTE_DEMO": "0",
        "TELESANTE_LOG_LEVEL": "WARNING",
        "TELESANTE_JOBS_POLL_SECONDS": "1",
        "TELESANTE_DICOM_PORT": "0",  # several live servers may run at once: no DICOM listener  # timers (escalations) fire within a second of being due
    }
    env.pop("TELESANTE_DATABASE_URL", None)
    python = sys.executable
    subprocess.run(
        [python, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    seeded = subprocess.run(
        [python, "-m", "tests.live_seed"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    info = json.loads(seeded.stdout.strip().splitlines()[-1])
    port = _free_port()
    process = subprocess.Popen(
        [
            python,
            "-m",
            "uvicorn",
            "--factory",
            "telesante.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return LiveServer(url, info, process, data_dir)
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("server did not start within 30 s")


def stop_live_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
