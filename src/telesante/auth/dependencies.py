"""Authentication dependencies: bearer token (API, FHIR) or session cookie (web), CSRF, role checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from telesante.auth import security, service
from telesante.auth.models import WebSession
from telesante.auth.principal import Principal
from telesante.config import Settings
from telesante.db import get_session
from telesante.directory.models import Role
from telesante.kit.errors import Forbidden, NotAuthenticated

SESSION_COOKIE = "ts_session"
CSRF_COOKIE = "ts_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def get_settings_dep(connection: HTTPConnection) -> Settings:
    """Async on purpose, as every dependency that does not block: FastAPI runs a plain ``def`` dependency in a
    worker thread, a round trip between threads on each request (docs/performance.md)."""
    return connection.app.state.settings


# scope="function": the commit runs before the response is sent (a failed commit never answers 2xx).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def current_web_session(
    request: Request, session: SessionDep, settings: SettingsDep
) -> WebSession | None:
    if hasattr(request.state, "web_session"):
        return request.state.web_session
    web_session = await service.session_from_token(session, settings, request.cookies.get(SESSION_COOKIE))
    request.state.web_session = web_session
    return web_session


async def optional_principal(
    request: Request, session: SessionDep, settings: SettingsDep
) -> Principal | None:
    if hasattr(request.state, "principal"):
        return request.state.principal
    token = bearer_token(request)
    if token is not None:
        principal = await service.principal_for_api_token(session, token)
        if principal is None:
            raise NotAuthenticated("Jeton d'accès invalide, expiré ou révoqué.")
    else:
        web_session = await current_web_session(request, session, settings)
        principal = await service.principal_for_session(session, web_session) if web_session else None
    request.state.principal = principal
    return principal


async def require_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise NotAuthenticated()
    return principal


async def require_bearer(
    request: Request, principal: Annotated[Principal, Depends(require_principal)]
) -> Principal:
    """FHIR is for systems: bearer token only."""
    if principal.auth_method != "token":
        raise NotAuthenticated("Jeton d'accès (Authorization: Bearer) requis.")
    return principal


PrincipalDep = Annotated[Principal, Depends(require_principal)]


def require_roles(*roles: Role):
    async def _check(principal: PrincipalDep) -> Principal:
        if not principal.has_role(*roles):
            raise Forbidden()
        return principal

    return _check


async def csrf_protect(connection: HTTPConnection, settings: SettingsDep) -> None:
    """Every unsafe request authenticated by cookie carries the signed double-submit token.

    Requests with a bearer token carry no ambient authority and are exempt. WebSockets have no method and no form:
    their endpoints check the Origin of the handshake instead (video signalling).
    """
    if not isinstance(connection, Request):
        return
    request = connection
    if request.method in SAFE_METHODS or bearer_token(request) is not None:
        return
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    if not security.csrf_valid(request.app.state.secret_key, request.cookies.get(CSRF_COOKIE), submitted):
        raise Forbidden(
            "Jeton anti-falsification (CSRF) absent ou invalide : rechargez la page et recommencez."
        )
