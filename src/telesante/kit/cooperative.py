"""Long CPU-bound loops inside a request hand the event loop back now and then; bulk work gives way to the rest.

One process serves every request with one event loop. A device gateway's batch of 500 readings is tens of
milliseconds of Python between two database round trips: ``pause`` in its loops lets the other requests of the
instance in every ``EVERY`` items. That alone is not enough under a sustained load: each of a single reading's
twenty round trips then waits behind a slice of every batch in progress, and its alert reached the operator after
150–300 ms instead of 15 (docs/performance.md, issue 7).

So requests are of two kinds. Every HTTP request is *interactive* (``request``, entered by the request-context
middleware) until it says otherwise: a batch of more than ``BULK_ENTRIES`` items declares itself *bulk* (``bulk``),
a long-lived stream declares itself neither (``background``). At its pauses, bulk work waits while an interactive
request younger than ``PRIORITY_SECONDS`` is in progress, for at most ``MAX_WAIT_SECONDS`` per pause: a reading,
an operator's click or a doctor's page goes through without queueing behind the batches, and a batch is never
starved (an interactive request older than the window, an upload say, no longer holds it back).

Bulk work only waits where it holds nothing that an interactive request could need: ``no_waiting`` marks the
stretches where it does (on SQLite, a part's transaction holds the single write lock; on PostgreSQL, a batch waits
only while storing its readings, before it takes any lock that another request could want: its observations are new
rows, and the audit chain comes after its last pause; it judges their rules without waiting, holding the
enrolments' rows)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

EVERY = 64  # items between two pauses: a few milliseconds of work
BULK_ENTRIES = 50  # a request carrying more items than this is bulk work
PRIORITY_SECONDS = 0.25  # an interactive request is waited for while it is younger than this
MAX_WAIT_SECONDS = 0.05  # the longest a bulk request waits at one pause


@dataclass(eq=False)
class _Request:
    started: float
    kind: str = "interactive"  # "interactive" | "bulk" | "background"
    may_wait: bool = True


_current: ContextVar[_Request | None] = ContextVar("telesante_cooperative_request", default=None)
_interactive: set[_Request] = set()
_waiters: list[asyncio.Future] = []


def _release(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _wake() -> None:
    while _waiters:
        try:
            waiter = _waiters.pop()
        except IndexError:  # emptied meanwhile by another thread's loop
            return
        # its own loop's thread does it (one loop per server process; tests may run a live server in a thread)
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
            waiter.get_loop().call_soon_threadsafe(_release, waiter)


def _leave(current: _Request) -> None:
    if current in _interactive:
        _interactive.discard(current)
        if not _interactive:
            _wake()


@contextlib.contextmanager
def request() -> Iterator[None]:
    """Around one HTTP request (the request-context middleware): interactive until it declares itself otherwise."""
    current = _Request(time.monotonic())
    _interactive.add(current)
    token = _current.set(current)
    try:
        yield
    finally:
        _current.reset(token)
        _leave(current)


def bulk() -> None:
    """This request is bulk work (a device gateway's batch): it gives way to interactive requests at its pauses."""
    current = _current.get()
    if current is not None:
        current.kind = "bulk"
        _leave(current)


def background() -> None:
    """This request lasts (an event stream): it neither waits nor is waited for."""
    current = _current.get()
    if current is not None:
        current.kind = "background"
        _leave(current)


@contextlib.contextmanager
def no_waiting() -> Iterator[None]:
    """Bulk work holds something an interactive request could need (SQLite's write lock): it does not wait here."""
    current = _current.get()
    if current is None or not current.may_wait:
        yield
        return
    current.may_wait = False
    try:
        yield
    finally:
        current.may_wait = True


def _pressing(now: float) -> bool:
    return any(now - other.started < PRIORITY_SECONDS for other in tuple(_interactive))


async def give_way() -> None:
    """Bulk work where it may wait: until no young interactive request is in progress (at most
    ``MAX_WAIT_SECONDS``); anything else, and bulk work that may not wait, just lets the event loop run once."""
    current = _current.get()
    if current is None or current.kind != "bulk" or not current.may_wait or not _pressing(time.monotonic()):
        await asyncio.sleep(0)
        return
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    loop = asyncio.get_running_loop()
    while (now := time.monotonic()) < deadline and _pressing(now):
        waiter = loop.create_future()
        _waiters.append(waiter)
        # woken when the last interactive request ends; else looks again when the youngest leaves the window
        youngest = max((other.started for other in tuple(_interactive)), default=now)
        timeout = min(deadline, youngest + PRIORITY_SECONDS) - now
        try:
            await asyncio.wait_for(waiter, max(timeout, 0.001))
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ValueError):
                _waiters.remove(waiter)


async def pause(index: int, every: int = EVERY) -> None:
    """Call at each item of a long loop: every ``every`` items, let the event loop serve the other requests (bulk
    work gives way to interactive requests there, see ``give_way``)."""
    if index % every == every - 1:
        await give_way()
