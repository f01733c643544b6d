"""Request context (who, from where, which request) carried by a contextvar, never a thread-local."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestContext:
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ip: str | None = None
    user_agent: str | None = None
    channel: str = "web"  # web | api | fhir | cli
    body_bytes: int = 0  # as announced (Content-Length): a large body is bulk work (db.WriteQueue)


_current: ContextVar[RequestContext | None] = ContextVar("telesante_request_context", default=None)


def current() -> RequestContext:
    ctx = _current.get()
    if ctx is None:
        ctx = RequestContext(channel="cli")
        _current.set(ctx)
    return ctx


def bind(ctx: RequestContext):
    return _current.set(ctx)


def reset(token) -> None:
    _current.reset(token)
