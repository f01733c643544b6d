"""Pure ASGI middleware: request context, security headers, request body limit."""

from __future__ import annotations

import json
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telesante.kit import context, cooperative

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9\-_.]{8,64}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        path = scope.get("path", "")
        channel = "fhir" if path.startswith("/fhir") else "api" if path.startswith("/api") else "web"
        client = scope.get("client")
        ctx = context.RequestContext(
            request_id=request_id,
            ip=client[0] if client else None,
            user_agent=headers.get("user-agent", "")[:300],
            channel=channel,
            body_bytes=_content_length(headers),
        )
        token = context.bind(ctx)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                existing = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in existing]
                if path.startswith(("/static", "/api", "/fhir", "/healthz", "/openapi.json")):
                    pass
                elif b"cache-control" not in existing:  # pages hold patient data: never cached
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = (
                    list(message.get("headers", [])) + extra + [(b"x-request-id", request_id.encode())]
                )
            await send(message)

        try:
            with cooperative.request():  # interactive, unless the route says otherwise (kit/cooperative.py)
                await self.app(scope, receive, send_with_headers)
        finally:
            context.reset(token)


def _content_length(headers: dict[str, str]) -> int:
    value = headers.get("content-length", "")
    # ASCII digits only: "²" is a digit to str.isdigit but not to int()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 16 else 0


class BodyLimitMiddleware:
    """Refuse request bodies above ``max_bytes`` with 413, whether announced or streamed. File uploads (paths
    ending in ``/attachments``) may carry up to ``upload_max_bytes``; the service then checks each file's size."""

    UPLOAD_SUFFIX = "/attachments"

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_max_bytes: int | None = None,
        path_limits: dict[str, int] | None = None,
        prefix_limits: dict[str, int] | None = None,
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = max(upload_max_bytes or max_bytes, max_bytes)
        # Exact paths with a limit of their own (e.g. FHIR creations carrying base64 documents).
        self.path_limits = {path: max(limit, max_bytes) for path, limit in (path_limits or {}).items()}
        # Path prefixes with a limit of their own (e.g. DICOMweb STOW-RS: a whole study in one request).
        self.prefix_limits = [
            (prefix, max(limit, max_bytes)) for prefix, limit in (prefix_limits or {}).items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.path_limits.get(path) or next(
            (value for prefix, value in self.prefix_limits if path.startswith(prefix)), None
        )
        limit = limit or (self.upload_max_bytes if path.endswith(self.UPLOAD_SUFFIX) else self.max_bytes)
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._refuse(send, limit)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Requête trop volumineuse",
                "status": 413,
                "detail": f"Le corps de la requête dépasse {limit} octets.",
            },
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass
