"""``GET /evenements``: the live stream (Server-Sent Events) of the signed-in user's events.

Browsers connect with their session cookie (htmx SSE extension, ``EventSource``); API clients with
``Authorization: Bearer``. Each message carries ``event: <type>``, ``id: <event id>`` and a JSON ``data:``; comment
lines keep the connection alive every ``TELESANTE_EVENTS_HEARTBEAT_SECONDS``. Without valid credentials: 401 as
problem+json (never the login redirect: an ``EventSource`` cannot follow it to a form).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from telesante.auth.dependencies import SessionDep, SettingsDep, optional_principal
from telesante.auth.principal import Principal
from telesante.events.bus import BusClosed, EventBus
from telesante.events.service import events_for
from telesante.kit import context, cooperative
from telesante.kit.errors import NotAuthenticated

SHUTDOWN_GRACE_SECONDS = 2.0  # time given to open streams to end by themselves when the server stops
router = APIRouter(
    include_in_schema=False
)  # an endless stream: kept out of the OpenAPI document (schemathesis)


async def stream_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal | None:
    """The cookie or bearer principal, or ``None`` (missing, expired or revoked credentials)."""
    try:
        return await optional_principal(request, session, settings)
    except NotAuthenticated:
        return None


def _unauthenticated() -> Response:
    body = {
        "type": "about:blank",
        "title": "Authentification requise",
        "status": 401,
        "detail": "Authentification requise : connectez-vous ou présentez un jeton (Authorization: Bearer).",
        "code": "non-authentifie",
        "request_id": context.current().request_id,
    }
    return JSONResponse(
        body, status_code=401, media_type="application/problem+json", headers={"WWW-Authenticate": "Bearer"}
    )


async def _messages(
    bus: EventBus, principal: Principal, max_seconds: float, shutdown: anyio.Event
) -> AsyncIterator[ServerSentEvent]:
    try:
        async for event in events_for(bus, principal.account_id, max_seconds=max_seconds, stop=shutdown):
            yield ServerSentEvent(
                data=json.dumps(event.browser_payload(), ensure_ascii=False, separators=(",", ":")),
                event=event.type,
                id=event.id,
            )
    except BusClosed:  # the application is stopping: end the stream, the client reconnects elsewhere
        return


@router.get("/evenements")
async def event_stream(
    request: Request,
    settings: SettingsDep,
    principal: Annotated[Principal | None, Depends(stream_principal)],
) -> Response:
    cooperative.background()  # open for minutes: bulk work does not wait for it
    if principal is None:
        return _unauthenticated()
    shutdown = anyio.Event()  # set by sse-starlette when the server stops: the stream then ends properly
    return EventSourceResponse(
        _messages(request.app.state.event_bus, principal, settings.events_stream_max_seconds, shutdown),
        ping=settings.events_heartbeat_seconds,
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
        headers={"X-Accel-Buffering": "no"},  # nginx: do not buffer the stream
    )
