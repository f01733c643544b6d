"""The garbage collector's tuning at start-up, run in a fresh interpreter (freezing is process-wide)."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, json, sys, tempfile
    from telesante.config import Settings
    from telesante.main import create_app

    async def main(freeze):
        settings = Settings(data_dir=tempfile.mkdtemp(), secret_key="s" * 32, demo=False, dicom_port=0,
                            jobs_enabled=False, gc_freeze=freeze)
        app = create_app(settings)
        before = gc.get_freeze_count()
        async with app.router.lifespan_context(app):
            during = gc.get_freeze_count()
            threshold = gc.get_threshold()[0]
        from telesante.kit import runtime
        again = runtime.tune_garbage_collector() if freeze else None
        print(json.dumps({"before": before, "during": during, "threshold": threshold, "again": again}))

    asyncio.run(main(sys.argv[1] == "on"))
    """
)


def _run(mode: str) -> dict:
    import json

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["on", "off"])
def test_start_up_freezes_the_loaded_heap_once_when_asked(mode):
    seen = _run(mode)
    assert seen["before"] == 0
    if mode == "on":
        # the application's modules, routes and models: far more than a handful of objects
        assert seen["during"] > 100_000
        assert seen["threshold"] == 10_000
        assert seen["again"] is False  # a second application in the same process does not freeze again
    else:
        assert seen["during"] == 0
        assert seen["threshold"] == 700
