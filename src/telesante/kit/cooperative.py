"""Long CPU-bound loops inside a request hand the event loop back now and then."""

from __future__ import annotations

import asyncio

EVERY = 64  # items between two pauses: a few milliseconds of work


async def pause(index: int, every: int = EVERY) -> None:
    """Call at each item of a long loop: every ``every`` items, let the event loop serve the other requests.

    One process serves every request with one event loop; a device gateway's batch of 500 readings is tens of
    milliseconds of Python between two database round trips, and every other request of the instance (an alert, a
    doctor's click) would wait for the whole stretch, at each of its own awaits (docs/performance.md)."""
    if index % every == every - 1:
        await asyncio.sleep(0)
