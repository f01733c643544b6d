"""Publishing after commit, and which bus is "the application's bus" where no one passes it around.

Services call ``publish_on_commit(session, event)`` inside their transaction: the event is published only once that
transaction has committed (``telesante.db.after_commit``) and is forgotten if it rolls back. The bus is found:

1. in a web request: the bus of the application serving it (set per request by ``EventBusMiddleware``);
2. elsewhere (background jobs run by ``telesante.db.transaction``, timers): the bus bound to the process with
   ``bind_event_bus(bus)``, which the application's lifespan does at start-up;
3. ``use_event_bus(bus)`` scopes one explicitly (a job runner with its own bus, tests).

With no bus at all (a CLI command that seeds data) the event is dropped, which is logged at DEBUG level.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from telesante.db import after_commit
from telesante.events.bus import Event, EventBus, Subscription

log = logging.getLogger("telesante.events")

_request_bus: ContextVar[EventBus | None] = ContextVar("telesante_event_bus", default=None)
_bound_bus: EventBus | None = None


def bind_event_bus(bus: EventBus | None) -> None:
    """Make ``bus`` the process's default bus (for code outside a web request); ``None`` unbinds it."""
    global _bound_bus
    _bound_bus = bus


def unbind_event_bus(bus: EventBus) -> None:
    """Undo ``bind_event_bus(bus)`` unless another bus was bound since (another application in the process)."""
    global _bound_bus
    if _bound_bus is bus:
        _bound_bus = None


def current_event_bus() -> EventBus | None:
    """The bus that ``publish_on_commit`` would use here."""
    return _request_bus.get() or _bound_bus


@contextlib.contextmanager
def use_event_bus(bus: EventBus) -> Iterator[EventBus]:
    """Use ``bus`` for the code inside the block (this task and the tasks it starts)."""
    token = _request_bus.set(bus)
    try:
        yield bus
    finally:
        _request_bus.reset(token)


def publish_on_commit(session: AsyncSession, event: Event) -> None:
    """Publish ``event`` on the application's bus once ``session``'s transaction commits; nothing on rollback.

    A failure to publish (Redis unreachable) is logged and does not fail the request: the data is committed and
    the pages show it on their next load; live updates are a convenience, not the record.
    """
    bus = current_event_bus()
    if bus is None:
        log.debug("Aucun bus d'évènements : %s (%s) non publié.", event.type, event.id)
        return

    async def _publish() -> None:
        try:
            await bus.publish(event)
        except Exception:
            log.exception(
                "Évènement %s (%s) non publié : bus d'évènements injoignable.", event.type, event.id
            )

    after_commit(session, _publish)


class _Waitable(Protocol):
    async def wait(self) -> Any: ...


async def events_for(
    bus: EventBus, account_id: uuid.UUID, *, max_seconds: float | None = None, stop: _Waitable | None = None
) -> AsyncIterator[Event]:
    """The events addressed to ``account_id`` as they come; ends when the bus stops, when ``stop`` is set (server
    shutting down), when the reader falls too far behind, or after ``max_seconds`` (the client then reconnects,
    which authenticates it again)."""
    deadline = None if max_seconds is None else asyncio.get_running_loop().time() + max_seconds
    async with bus.subscribe(account_id) as subscription:
        watcher = asyncio.create_task(_close_on(stop, subscription)) if stop is not None else None
        try:
            while True:
                try:  # the time limit covers the wait only, never the consumer's work between two events
                    async with asyncio.timeout_at(deadline):
                        event = await anext(subscription)
                except (StopAsyncIteration, TimeoutError):
                    return
                yield event
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher


async def _close_on(stop: _Waitable, subscription: Subscription) -> None:
    await stop.wait()
    subscription.close()


class EventBusMiddleware:
    """Pure ASGI middleware: during each request, ``publish_on_commit`` uses the serving application's bus
    (``app.state.event_bus``), so that several applications in one process (tests) never mix their events."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        application = scope.get("app")
        bus = getattr(application.state, "event_bus", None) if application is not None else None
        if scope["type"] != "http" or bus is None:
            await self.app(scope, receive, send)
            return
        token = _request_bus.set(bus)
        try:
            await self.app(scope, receive, send)
        finally:
            _request_bus.reset(token)
