"""The event bus: what happened (an ``Event``), who must hear it (account ids), and how it travels.

Two backends with one interface (``EventBus``):

- ``InProcessBus`` (default): delivery inside one process, for a single application instance.
- ``RedisBus`` (``TELESANTE_REDIS_URL`` set): every instance publishes on one Redis pub/sub channel and listens to
  it; each instance then hands the events to its own connected users. A user connected to instance A sees an event
  raised on instance B. Delivery always goes through Redis, even to the instance's own users (one path, one order).

Events are live notifications (best effort), not a message queue: a browser that is not connected when an event is
published does not receive it later; pages reload their data when they open, so nothing is lost for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pydantic
import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

from telesante.kit import clock

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from telesante.config import Settings

log = logging.getLogger("telesante.events")

DEFAULT_CHANNEL = "telesante:events"
SUBSCRIBER_QUEUE_SIZE = 256  # events waiting for one slow browser before its stream is closed (it reconnects)
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Event:
    """Something that happened, for the accounts in ``recipients``. ``data`` holds ids and states only (no patient
    identity): it travels through Redis and reaches browsers as JSON."""

    type: str  # dotted, lower case: "request.updated", "oncall.page"
    recipients: frozenset[uuid.UUID]
    data: dict[str, Any]
    urgent: bool = False  # the browser shows a notification and plays a sound
    id: str = field(default_factory=_new_id)
    at: datetime = field(default_factory=clock.now)

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not _EVENT_TYPE.match(self.type):
            raise ValueError(f"type d'évènement invalide : {self.type!r} (attendu : « domaine.action »).")
        recipients = self.recipients
        if isinstance(recipients, str | bytes) or not isinstance(recipients, Iterable):
            raise TypeError("recipients : ensemble d'identifiants de comptes attendu.")
        coerced = frozenset(r if isinstance(r, uuid.UUID) else uuid.UUID(str(r)) for r in recipients)
        object.__setattr__(self, "recipients", coerced)
        if self.at.tzinfo is None:
            raise ValueError("at : date avec fuseau horaire (UTC) attendue.")
        if not isinstance(self.data, dict):
            raise TypeError("data : dictionnaire attendu.")
        try:  # fail in the transaction that raises the event, not after its commit; plain JSON types only
            json.dumps(self.data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"data : valeurs JSON simples attendues (texte, nombre, booléen, liste) : {exc}"
            ) from exc

    def to_json(self) -> str:
        """The wire form (Redis)."""
        return _EventMessage(
            id=self.id,
            type=self.type,
            recipients=sorted(self.recipients),
            data=self.data,
            urgent=self.urgent,
            at=self.at,
        ).model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        """Parse the wire form; ``ValueError`` when it is not an event."""
        try:
            message = _EventMessage.model_validate_json(raw)
        except pydantic.ValidationError as exc:
            raise ValueError(f"message d'évènement invalide : {exc.error_count()} erreur(s)") from exc
        return cls(
            type=message.type,
            recipients=frozenset(message.recipients),
            data=message.data,
            urgent=message.urgent,
            id=message.id,
            at=message.at,
        )

    def browser_payload(self) -> dict[str, Any]:
        """What a browser receives as the SSE ``data:`` (recipients stay on the server)."""
        return {
            "id": self.id,
            "type": self.type,
            "at": self.at.isoformat(),
            "urgent": self.urgent,
            "data": self.data,
        }


class _EventMessage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    id: str = pydantic.Field(min_length=1, max_length=64)
    type: str = pydantic.Field(pattern=_EVENT_TYPE.pattern, max_length=100)
    recipients: list[uuid.UUID]
    data: dict[str, Any]
    urgent: bool = False
    at: pydantic.AwareDatetime


class BusClosed(RuntimeError):
    """The bus is stopped (application shutting down): no new subscriptions."""


class BusUnavailable(RuntimeError):
    """The bus's peer (Redis) cannot be reached at start-up."""


class Subscription:
    """The events of one account on one connection, in order. Iterating ends when the bus stops, when the
    subscription is closed, or when the reader fell too far behind (the browser then reconnects)."""

    _END = object()

    def __init__(self, account_id: uuid.UUID, maxsize: int = SUBSCRIBER_QUEUE_SIZE):
        self.account_id = account_id
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize + 1)  # + room for the end marker
        self._maxsize = maxsize
        self.closed = False
        self.overflowed = False

    @property
    def pending(self) -> int:
        """Events delivered but not read yet."""
        return self._queue.qsize()

    def deliver(self, event: Event) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self._maxsize:
            log.warning(
                "Flux d'évènements trop lent (compte %s) : fermé, le navigateur se reconnectera.",
                self.account_id,
            )
            self.overflowed = True
            self.close()
            return
        self._queue.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(self._END)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if item is self._END:
            self._queue.put_nowait(self._END)  # later reads end too
            raise StopAsyncIteration
        return item


class EventBus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, event: Event) -> None: ...

    def subscribe(self, account_id: uuid.UUID) -> AbstractAsyncContextManager[Subscription]: ...

    def subscriber_count(self, account_id: uuid.UUID | None = None) -> int: ...


class _LocalHub:
    """Subscriptions of this process, by account; hands each event to its recipients only."""

    def __init__(self) -> None:
        self._subscriptions: dict[uuid.UUID, set[Subscription]] = {}

    def add(self, account_id: uuid.UUID) -> Subscription:
        subscription = Subscription(account_id)
        self._subscriptions.setdefault(account_id, set()).add(subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        subscription.close()
        bucket = self._subscriptions.get(subscription.account_id)
        if bucket is not None:
            bucket.discard(subscription)
            if not bucket:
                del self._subscriptions[subscription.account_id]

    def dispatch(self, event: Event) -> None:
        for account_id in event.recipients:
            for subscription in list(self._subscriptions.get(account_id, ())):
                subscription.deliver(event)

    def close_all(self) -> None:
        for bucket in list(self._subscriptions.values()):
            for subscription in list(bucket):
                self.remove(subscription)

    def count(self, account_id: uuid.UUID | None = None) -> int:
        if account_id is not None:
            return len(self._subscriptions.get(account_id, ()))
        return sum(len(bucket) for bucket in self._subscriptions.values())


class InProcessBus:
    """One process, no peer: publish hands the event straight to this process's subscribers. Usable without
    ``start()`` (tests that do not run the lifespan); ``stop()`` ends every subscription."""

    def __init__(self) -> None:
        self._hub = _LocalHub()
        self._stopped = False

    async def start(self) -> None:
        self._stopped = False

    async def stop(self) -> None:
        self._stopped = True
        self._hub.close_all()

    async def publish(self, event: Event) -> None:
        self._hub.dispatch(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, account_id: uuid.UUID) -> AsyncIterator[Subscription]:
        if self._stopped:
            raise BusClosed("bus d'évènements arrêté")
        subscription = self._hub.add(account_id)
        try:
            yield subscription
        finally:
            self._hub.remove(subscription)

    def subscriber_count(self, account_id: uuid.UUID | None = None) -> int:
        return self._hub.count(account_id)


class RedisBus:
    """Several application instances: publish on a Redis pub/sub channel; one listener task per instance reads the
    channel and dispatches to the local subscribers. The listener survives a Redis outage (it logs, waits and
    re-subscribes); events published while Redis is unreachable are lost (see ``publish_on_commit``)."""

    RETRY_FIRST_SECONDS = 0.5
    RETRY_MAX_SECONDS = 30.0

    def __init__(self, url: str, channel: str = DEFAULT_CHANNEL):
        self.channel = channel
        self._client = redis_asyncio.Redis.from_url(url)  # the library parses and checks the URL
        self._hub = _LocalHub()
        self._pubsub: redis_asyncio.client.PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._listener is not None and not self._listener.done()

    async def start(self) -> None:
        """Subscribe to the channel (returns once Redis confirmed it) and start the listener."""
        if self.running:
            return
        pubsub = self._client.pubsub(ignore_subscribe_messages=False)
        try:
            await pubsub.subscribe(self.channel)
            async with asyncio.timeout(10):
                while True:  # the confirmation: from now on, nothing published on the channel is missed
                    message = await pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "subscribe":
                        break
        except (RedisError, OSError, TimeoutError) as exc:
            await pubsub.aclose()
            raise BusUnavailable(f"bus d'évènements Redis injoignable ({exc})") from exc
        except BaseException:
            await pubsub.aclose()
            raise
        self._pubsub = pubsub
        self._listener = asyncio.create_task(self._listen(pubsub), name=f"redis-bus:{self.channel}")

    async def stop(self) -> None:
        """End every local subscription, stop listening, close the connections. Restartable."""
        self._hub.close_all()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.unsubscribe(self.channel)
            await pubsub.aclose()
        await self._client.aclose()

    async def publish(self, event: Event) -> None:
        await self._client.publish(self.channel, event.to_json())

    @contextlib.asynccontextmanager
    async def subscribe(self, account_id: uuid.UUID) -> AsyncIterator[Subscription]:
        if not self.running:
            raise BusClosed("bus d'évènements Redis non démarré ou arrêté")
        subscription = self._hub.add(account_id)
        try:
            yield subscription
        finally:
            self._hub.remove(subscription)

    def subscriber_count(self, account_id: uuid.UUID | None = None) -> int:
        return self._hub.count(account_id)

    async def _listen(self, pubsub: redis_asyncio.client.PubSub) -> None:
        delay = self.RETRY_FIRST_SECONDS
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            except (RedisError, OSError) as exc:
                log.warning("Bus Redis : connexion perdue (%s) ; nouvel essai dans %.1f s.", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.RETRY_MAX_SECONDS)
                continue
            delay = self.RETRY_FIRST_SECONDS
            if not message or message.get("type") != "message":
                continue
            try:
                event = Event.from_json(message["data"])
            except ValueError as exc:
                log.warning("Bus Redis : message ignoré sur %s (%s).", self.channel, exc)
                continue
            self._hub.dispatch(event)


def make_event_bus(settings: Settings) -> EventBus:
    """Redis when ``TELESANTE_REDIS_URL`` is set (several instances), otherwise in-process."""
    if settings.redis_url is not None:
        return RedisBus(settings.redis_url.get_secret_value(), channel=settings.events_redis_channel)
    return InProcessBus()
