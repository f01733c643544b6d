"""A real server process on a temporary SQLite database, for peers that need a socket (browser, schemathesis).

The process is started and stopped as the benchmarks do it (``bench.notify``): uvicorn running the application
factory, ready once ``/healthz`` answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.notify import migrate, start_instance, stop_instance

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LiveServer:
    url: str
    info: dict
    process: subprocess.Popen
    data_dir: Path
    log: IO[bytes] | None = None  # the server's standard error (``bench.notify.start_instance``)


def start_live_server(dicom_port: int = 0) -> LiveServer:
    data_dir = Path(tempfile.mkdtemp(prefix="telesante-live-"))
    env = {
        **os.environ,
        "TELESANTE_DATA_DIR": str(data_dir),
        "TELESANTE_SECRET_KEY": "live-test-secret-key-0123456789",
        "TELESANTE_DEMO": "0",
        "TELESANTE_LOG_LEVEL": "WARNING",
        "TELESANTE_JOBS_POLL_SECONDS": "1",  # timers (escalations) fire within a second of being due
        # several live servers may run at once: a DICOM listener only when a test asks for one (on a free port)
        "TELESANTE_DICOM_PORT": str(dicom_port),
    }
    env.pop("TELESANTE_DATABASE_URL", None)
    migrate(env)
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.live_seed"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(seeded.stdout.strip().splitlines()[-1])
    instance = start_instance(env)
    return LiveServer(instance.url, info, instance.process, data_dir, instance.log)


def stop_live_server(server: LiveServer) -> None:
    stop_instance(server)
