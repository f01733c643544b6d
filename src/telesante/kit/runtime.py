"""Process-wide tuning of the interpreter for a long-running server."""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000  # allocations between two young-generation passes (CPython's default: 700)
_tuned = False


def tune_garbage_collector() -> bool:
    """Once per process, after start-up: move every object alive now (modules, routes, models and their validators,
    compiled statements: hundreds of thousands) out of the cyclic garbage collector's reach, and space its passes.

    A device gateway's batch allocates enough to trigger hundreds of young-generation passes and some full ones; a
    full pass walked the whole start-up heap, and the collector took a quarter of the ingest's CPU time
    (docs/performance.md). Frozen objects are still freed by reference counting; only cycles among them would stay,
    and start-up objects live as long as the process. Returns whether it tuned (False: already done)."""
    global _tuned
    if _tuned:
        return False
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    _tuned = True
    return True
