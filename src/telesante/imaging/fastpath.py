"""The viewer's hot path: a frame that the same user has just been allowed to read, served without the framework.

A viewer fetches every frame of a series one by one. The first frame of a series goes through the DICOMweb route:
authentication, the access rule, the audit. That route then remembers who the caller's credential belongs to (the
principal, for FAST_PRINCIPAL_SECONDS), and the imaging service remembers where the instance's frames lie, that this
user may see the study (30 s) and that the series' view is audited (10 min). While all four are fresh, the next
frames of that study are answered here, the same decision (``_decide``) taken in one of two places:
- ``early_answer``, called by the platform's HTTP protocol before the application runs (``web/zerocopy.py``), when
  the page cache holds the frame: the file's range, mapped in memory, is handed to the socket;
- ``FrameFastPath``, the outermost ASGI middleware, otherwise: one ranged read of the stored file.
Anything else — a frame that must be decoded, an unknown credential, an expired entry, a malformed request — goes on
to the route unchanged.

``early_answer`` keeps each decision it took, for the same path, credential and Accept header, until the first of
the four entries it rests on expires: the next scroll through the series (a viewer goes back and forth) costs a
lookup instead of the whole decision again, which was a fifth of a frame's time here (docs/performance.md).

A logout, a revoked token, a password change or a deactivated account drops what is kept for the account at once in
the process that made the change (``auth.service.on_credentials_revoked``); on other instances of a scaled-out
installation such a credential may still read frames of a study it was reading for at most FAST_PRINCIPAL_SECONDS.
Nothing else is served from memory (documented in docs/domains/imaging.md)."""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from telesante.auth import service as auth_service
from telesante.auth.principal import Principal
from telesante.imaging import service
from telesante.imaging.negotiation import FrameFormat, frame_format
from telesante.web import zerocopy
from telesante.web.middleware import SECURITY_HEADERS

FAST_PRINCIPAL_SECONDS = 10.0
SESSION_COOKIE = b"ts_session"
_FRAME_PATH = re.compile(
    r"^/dicomweb/studies/([0-9.]{1,64})/series/([0-9.]{1,64})/instances/([0-9.]{1,64})/frames/([0-9]{1,6})$"
)


@dataclass(frozen=True)
class _Known:
    account_id: uuid.UUID
    grants: tuple
    at: float


_principals: dict[bytes, _Known] = {}
_decisions: dict[
    tuple[str, bytes, str], _Decision
] = {}  # (path, credential digest, Accept) → the early answer's parts
_formats: dict[tuple[str, str], FrameFormat] = {}  # (Accept, stored transfer syntax): the format to send


def _credential(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """A digest of the caller's credential: the bearer token, else the session cookie."""
    cookie = None
    for key, value in headers:
        if key == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return hashlib.sha256(b"bearer:" + token.strip()).digest()
        elif key == b"cookie":
            for part in value.split(b";"):
                name, _, content = part.strip().partition(b"=")
                if name == SESSION_COOKIE and content:
                    cookie = hashlib.sha256(b"session:" + content).digest()
    return cookie


def remember(headers: list[tuple[bytes, bytes]], principal: Principal) -> None:
    """Called by the frames route once the caller is authenticated and allowed."""
    key = _credential(headers)
    if key is None:
        return
    if len(_principals) >= 10_000:
        _principals.clear()
    _principals[key] = _Known(principal.account_id, principal.grants, time.monotonic())


def forget_all() -> None:
    _principals.clear()
    _decisions.clear()


def forget_account(account_id: uuid.UUID) -> None:
    """The account's sessions or tokens were just closed: nothing of it is served from memory any more, in this
    process at once (other instances: within FAST_PRINCIPAL_SECONDS)."""
    for key in [key for key, known in _principals.items() if known.account_id == account_id]:
        _principals.pop(key, None)
    _decisions.clear()  # rare (a logout, a revocation): everyone's next frame is decided again
    service.forget_account(account_id)


auth_service.on_credentials_revoked(forget_account)


@dataclass(frozen=True, slots=True)
class _Frame:
    """A frame the caller may read, decided from memory alone."""

    location: service.FrameLocation
    index: int
    content_type: str
    head: str  # the part's head ("" for a single part), with ``{}`` for the frame's length
    tail: bytes
    until: float  # (monotonic) when the first of the entries this decision rests on expires


@dataclass(frozen=True, slots=True)
class _Decision:
    """An early answer's parts, kept for the same path, credential and Accept until ``until``."""

    blob_key: str
    offset: int
    length: int
    fields: bytes
    before: bytes
    after: bytes
    until: float


def _decide(
    scope: Scope, found: re.Match, key: bytes | None = None, accept: str | None = None
) -> _Frame | None:
    """The frame, if the caller's credential, the study's access rule and the series' audit are all fresh in
    memory and the frame is sent as stored; else None (the route decides). ``key`` and ``accept``: the credential's
    digest and the Accept header when the caller has read them already."""
    study_uid, series_uid, sop_uid, number = found.groups()
    headers = scope.get("headers", [])
    now = time.monotonic()
    if key is None:
        key = _credential(headers)
    known = _principals.get(key) if key else None
    if known is None or now - known.at >= FAST_PRINCIPAL_SECONDS:
        return None
    location = service.cached_location(study_uid, series_uid, sop_uid)
    if location is None:
        return None
    fresh_until = service.fresh_until(known.account_id, known.grants, location, now)
    if fresh_until is None:
        return None
    index = int(number)
    if not 1 <= index <= len(location.frames):
        return None
    if accept is None:
        accept = next((v.decode("latin-1") for k, v in headers if k == b"accept"), "")
    until = min(fresh_until, known.at + FAST_PRINCIPAL_SECONDS)
    wanted = _formats.get((accept, location.transfer_syntax_uid))
    if wanted is None:
        try:
            wanted = frame_format(accept, location.transfer_syntax_uid)
        except Exception:  # noqa: BLE001 - not acceptable: the route answers 406 with its reason
            return None
        if len(_formats) >= 256:
            _formats.clear()
        _formats[(accept, location.transfer_syntax_uid)] = wanted
    if wanted.native and location.transfer_syntax_uid not in service.pixels.NATIVE_SYNTAXES:
        return None  # to be decoded: the route does it
    if not wanted.multipart:
        return _Frame(location, index, wanted.part_type, "", b"", until)
    boundary = os.urandom(16).hex()
    return _Frame(
        location,
        index,
        f'multipart/related; type="{wanted.part_type.split(";")[0]}"; boundary={boundary}',
        f"--{boundary}\r\nContent-Type: {wanted.part_type}\r\nContent-Length: {{}}\r\n\r\n",
        f"\r\n--{boundary}--\r\n".encode(),
        until,
    )


def _headers(content_type: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", content_type.encode("latin-1")),
        (b"cache-control", b"private, no-store"),
        *SECURITY_HEADERS,
    ]


_FIELDS = b"".join(name + b": " + value + b"\r\n" for name, value in _headers("")[1:])  # all but Content-Type


def _request_keys(headers: list[tuple[bytes, bytes]]) -> tuple[bytes | None, str, bool]:
    """One look at the headers: the credential's digest, the Accept header, and whether the request is cross-origin."""
    accept, cross_origin = "", False
    for key, value in headers:
        if key == b"accept":
            accept = value.decode("latin-1")
        elif key == b"origin":
            cross_origin = True
    return _credential(headers), accept, cross_origin


def early_answer(store: Any, scope: dict) -> zerocopy.Answer | None:
    """For the server's early responder (``web/zerocopy.py``): the frame as a view of its file mapped in memory,
    when the fast path may serve it and the page cache holds it; else None and the request goes to the application.
    A cross-origin request (CORS headers to add) always goes to the application."""
    path = scope.get("path", "")
    if scope.get("query_string") or not path.startswith("/dicomweb/"):
        return None
    key, accept, cross_origin = _request_keys(scope["headers"])
    if cross_origin or key is None:
        return None
    decision = _decisions.get((path, key, accept))
    if decision is None or time.monotonic() >= decision.until:
        decision = _decision(scope, path, key, accept)
        if decision is None:
            return None
    mapper = getattr(store, "mapped_if_cached", None)
    body = mapper(decision.blob_key, decision.offset, decision.length) if mapper is not None else None
    if body is None:
        return None
    return zerocopy.Answer(decision.fields, decision.before, body, decision.after)


def _decision(scope: dict, path: str, key: bytes, accept: str) -> _Decision | None:
    """Decided afresh (``_decide``), and kept for the next time the same caller asks the same frame the same way."""
    found = _FRAME_PATH.match(path)
    frame = _decide(scope, found, key, accept) if found is not None else None
    if frame is None or len(fragments := frame.location.frames[frame.index - 1]) != 1:
        _decisions.pop((path, key, accept), None)
        return None
    offset, length = fragments[0]
    decision = _Decision(
        frame.location.blob_key,
        offset,
        length,
        b"content-type: " + frame.content_type.encode("latin-1") + b"\r\n" + _FIELDS,
        frame.head.format(length).encode() if frame.head else b"",
        frame.tail,
        frame.until,
    )
    if len(_decisions) >= 20_000:
        _decisions.clear()
    _decisions[(path, key, accept)] = decision
    return decision


class FrameFastPath:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            found = _FRAME_PATH.match(scope.get("path", ""))
            if found is not None and await self._serve(scope, send, found):
                return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, send: Send, found: re.Match) -> bool:
        frame = _decide(scope, found)
        if frame is None:
            return False
        store = scope["app"].state.blob_store
        location, index, head, tail = frame.location, frame.index, frame.head, frame.tail
        fragments = location.frames[index - 1]
        try:
            if len(fragments) == 1:  # the usual case: read straight into the response (no copy)
                offset, length = fragments[0]
                start = head.format(length).encode() if head else b""
                body: bytes | bytearray = await service.read_part(
                    store, location.blob_key, length, start, tail, offset
                )
            else:
                data = (await service.read_frames(store, location, [index], native=False))[0]
                body = (head.format(len(data)).encode() if head else b"") + data + tail
        except Exception:  # noqa: BLE001 - storage trouble: the route answers it properly
            return False
        headers = [*_headers(frame.content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True
