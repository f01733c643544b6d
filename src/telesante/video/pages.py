"""The call pages and the signalling WebSocket.

- ``/video/rendez-vous/{appointment_id}``: a party of the appointment opens (or creates) its call;
- ``/video/salles/{room_id}``: the call page of a professional (the host admits the waiting room, invites guests);
- ``/video/invitation/{token}``: a guest's one-time link (confirm, then the browser gets its own cookie);
- ``/video/invite/{room_id}``: the guest's call page (nothing of the patient is shown);
- ``/video/salles/{room_id}/ws``: signalling (session cookie or guest cookie, same origin only);
- ``/video/test``: a device test page anyone can open (camera, microphone, speakers, bandwidth)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from starlette.websockets import WebSocketState

from telesante.auth import service as auth_service
from telesante.auth.dependencies import SESSION_COOKIE, PrincipalDep, SessionDep, SettingsDep
from telesante.db import after_commit, discard_changes, transaction
from telesante.kit import clock
from telesante.kit.errors import Conflict, DomainError, Forbidden, InvalidInput, NotAuthenticated
from telesante.kit.schemas import parse_input
from telesante.requests.schemas import ReportCreate
from telesante.storage.dependencies import BlobStoreDep
from telesante.video import service
from telesante.video.models import GUEST_ROLE_LABELS, GuestRole
from telesante.video.signalling import MAX_MESSAGE_BYTES, Member, RoomFull, SignallingHub
from telesante.video.turn import ice_servers
from telesante.web.forms import form_values, labelled_message, paris_datetime
from telesante.web.render import redirect, render, set_cookie

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
# The call pages use the camera, the microphone and screen sharing (the other pages forbid them).
MEDIA_PERMISSIONS = "camera=(self), microphone=(self), display-capture=(self), geolocation=()"


def _with_media(response: Response) -> Response:
    response.headers["permissions-policy"] = MEDIA_PERMISSIONS
    return response


@router.get("/video/test")
async def device_test(request: Request):
    """Camera, microphone, speakers and bandwidth, before any call; no account needed."""
    return _with_media(render(request, "video/test.html", {}))


_PROBE = os.urandom(2 * 1024 * 1024)  # random: no proxy can compress it


@router.get("/video/test/debit")
async def bandwidth_probe():
    """2 MiB the device test page downloads to estimate the bandwidth from the platform."""
    return Response(_PROBE, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


@router.get("/video/rendez-vous/{appointment_id}")
async def open_call(session: SessionDep, principal: PrincipalDep, appointment_id: uuid.UUID):
    room = await service.open_room(session, principal, appointment_id)
    return redirect(f"/video/salles/{room.id}")


async def _call_page(
    request: Request, session, principal, room_id: uuid.UUID, extra: dict[str, Any] | None = None
):
    seat = await service.enter_as_professional(session, principal, room_id)
    context = {
        "room_id": room_id,
        "seat": seat,
        "is_host": seat.role == "host",
        "links": await service.guest_links(session, principal, room_id),
        "guest_roles": GUEST_ROLE_LABELS,
        "now": clock.now(),
        **(extra or {}),
    }
    return _with_media(render(request, "video/call.html", context))


@router.get("/video/salles/{room_id}")
async def call_page(request: Request, session: SessionDep, principal: PrincipalDep, room_id: uuid.UUID):
    return await _call_page(request, session, principal, room_id)


@router.post("/video/salles/{room_id}/invitations")
async def invite(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, room_id: uuid.UUID
):
    values = form_values(await request.form(), ["name", "role"])
    try:
        role = GuestRole(values.get("role", ""))
    except ValueError:
        role = GuestRole.RELATIVE
    link, token = await service.create_guest_link(
        session, principal, room_id, name=values.get("name", ""), role=role, settings=settings
    )
    url = f"{settings.public_url.rstrip('/')}/video/invitation/{token}"
    return await _call_page(
        request, session, principal, room_id, {"new_link": url, "new_link_name": link.name}
    )


@router.post("/video/salles/{room_id}/invitations/{link_id}/annuler")
async def revoke(session: SessionDep, principal: PrincipalDep, room_id: uuid.UUID, link_id: uuid.UUID):
    await service.revoke_guest_link(session, principal, room_id, link_id)
    return redirect(f"/video/salles/{room_id}")


@router.get("/video/invitation/{token}")
async def invitation(request: Request, session: SessionDep, token: str):
    """Confirm before spending the link (a mail scanner that opens links must not use it up)."""
    try:
        link = await service.check_guest_link(session, token)
    except DomainError as exc:
        return render(request, "video/invitation.html", {"error": exc.message}, status_code=exc.status_code)
    return render(request, "video/invitation.html", {"name": link.name, "token": token})


@router.post("/video/invitation/{token}")
async def use_invitation(request: Request, session: SessionDep, settings: SettingsDep, token: str):
    try:
        link, cookie = await service.use_guest_link(session, token)
    except DomainError as exc:
        return render(request, "video/invitation.html", {"error": exc.message}, status_code=exc.status_code)
    response = redirect(f"/video/invite/{link.room_id}")
    hours = settings.video_guest_link_hours
    set_cookie(request, response, service.GUEST_COOKIE, cookie, max_age=hours * 3600)
    return response


@router.get("/video/invite/{room_id}")
async def guest_page(request: Request, session: SessionDep, room_id: uuid.UUID):
    try:
        seat = await service.guest_seat(session, request.cookies.get(service.GUEST_COOKIE), room_id)
    except DomainError as exc:
        return render(request, "video/invitation.html", {"error": exc.message}, status_code=exc.status_code)
    return _with_media(render(request, "video/guest.html", {"room_id": room_id, "seat": seat}))


@router.post("/video/salles/{room_id}/fichiers")
async def share(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    room_id: uuid.UUID,
):
    """A document or photo shared in the call (professionals): stored, then announced in the call's chat."""
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidInput("Aucun fichier reçu.", field="file")
    data = await upload.read()
    message = await service.share_file(
        session,
        principal,
        store,
        room_id,
        upload.filename or "document",
        data,
        max_bytes=settings.max_attachment_bytes,
    )
    after_commit(session, _announce_file(request.app.state.video_hub, room_id, message))
    return JSONResponse({"id": str(message.id), "filename": message.filename}, status_code=201)


def _announce_file(hub: SignallingHub, room_id: uuid.UUID, message):
    attachment = {
        "url": f"/video/salles/{room_id}/fichiers/{message.id}",
        "filename": message.filename,
        "content_type": message.content_type,
        "size": message.size,
    }
    participant, name, body = message.participant, message.participant_name, message.body

    async def announce() -> None:
        await hub.broadcast_chat(str(room_id), participant, name, body, attachment)

    return announce


@router.get("/video/salles/{room_id}/fichiers/{message_id}")
async def shared_file(
    request: Request, session: SessionDep, store: BlobStoreDep, room_id: uuid.UUID, message_id: uuid.UUID
):
    """A shared file, for the call's professionals and its guests (by their cookie)."""
    settings = request.app.state.settings
    web_session = await auth_service.session_from_token(
        session, settings, request.cookies.get(SESSION_COOKIE)
    )
    principal = await auth_service.principal_for_session(session, web_session) if web_session else None
    if principal is not None:
        seat = await service.enter_as_professional(session, principal, room_id)
    else:
        seat = await service.guest_seat(session, request.cookies.get(service.GUEST_COOKIE), room_id)
    message, data = await service.read_shared_file(session, store, seat, message_id)
    return Response(
        data,
        media_type=message.content_type,
        headers={
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(message.filename)}",
            "Cache-Control": "private, no-store",
        },
    )


def _report_values(form) -> dict[str, Any]:
    participants = []
    for index in range(20):
        name = (form.get(f"participant_name_{index}") or "").strip()
        role = (form.get(f"participant_role_{index}") or "").strip()
        if name or role:
            participants.append({"name": name, "role": role})
    values: dict[str, Any] = form_values(
        form,
        ["conclusion", "prescriptions", "technical_incident_details", "performed_at", "duration_minutes"],
    )
    values["participants"] = participants
    values["technical_incident"] = form.get("technical_incident") == "oui"
    return values


def _report_input(values: dict[str, Any]) -> ReportCreate:
    """The compte rendu from the form's values; ``performed_at`` (datetime-local) is Paris wall-clock time."""
    parsed = dict(values)
    if "performed_at" in values:  # left out when blank: the schema says it is required
        parsed["performed_at"] = paris_datetime(values["performed_at"], "performed_at")
    return parse_input(ReportCreate, parsed)


@router.get("/video/salles/{room_id}/compte-rendu")
async def report_form(request: Request, session: SessionDep, principal: PrincipalDep, room_id: uuid.UUID):
    """The compte rendu, pre-filled from the call: participants, date and time, technical incidents."""
    draft = await service.report_draft(session, principal, room_id)
    return render(request, "video/report.html", {**draft, "room_id": room_id, "values": {}})


@router.post("/video/salles/{room_id}/compte-rendu")
async def sign(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    room_id: uuid.UUID,
):
    values = _report_values(await request.form())
    try:
        await service.finish_call(session, principal, settings, store, room_id, _report_input(values))
    except (InvalidInput, Conflict, Forbidden) as exc:
        await discard_changes(session)
        draft = await service.report_draft(session, principal, room_id)
        return render(
            request,
            "video/report.html",
            {**draft, "room_id": room_id, "values": values, "error": labelled_message(exc, REPORT_LABELS)},
            status_code=exc.status_code,
        )
    room = await service.visible_room(session, principal, room_id)
    hub: SignallingHub = request.app.state.video_hub

    async def end() -> None:
        await hub.end_room(str(room_id), "La téléconsultation est terminée : le compte rendu est signé.")

    after_commit(session, end)
    appointment = await service.appointment_of(session, principal, room)
    return redirect(f"/demandes/{appointment.request_id}")


REPORT_LABELS = {
    "conclusion": "Conclusion",
    "prescriptions": "Prescriptions",
    "participants": "Participants",
    "performed_at": "Date et heure",
    "duration_minutes": "Durée",
    "technical_incident_details": "Incidents techniques",
}


# --- signalling -----------------------------------------------------------------------------------------------


class _Socket:
    """A WebSocket as the hub's ``Connection``: one send at a time, close never raises."""

    def __init__(self, websocket: WebSocket):
        self.websocket = websocket
        self._lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            if self.websocket.application_state == WebSocketState.CONNECTED:
                await self.websocket.send_text(json.dumps(message))

    async def close(self, code: int, reason: str) -> None:
        try:
            if self.websocket.application_state == WebSocketState.CONNECTED:
                await self.websocket.close(code, reason)
        except Exception:  # noqa: BLE001 - the client is already gone (uvicorn's ClientDisconnected, OSError…)
            log.debug("socket already closed by its client")


def _same_origin(websocket: WebSocket) -> bool:
    """Browsers send cookies with cross-site WebSocket handshakes: only the platform's own pages may connect."""
    origin = websocket.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc == websocket.headers.get("host")


async def _seat(session, settings, websocket: WebSocket, room_id: uuid.UUID) -> service.Seat:
    web_session = await auth_service.session_from_token(
        session, settings, websocket.cookies.get(SESSION_COOKIE)
    )
    principal = await auth_service.principal_for_session(session, web_session) if web_session else None
    if principal is not None:
        return await service.enter_as_professional(session, principal, room_id)
    guest_cookie = websocket.cookies.get(service.GUEST_COOKIE)
    if guest_cookie:
        return await service.guest_seat(session, guest_cookie, room_id)
    raise NotAuthenticated("Connectez-vous, ou ouvrez le lien d'invitation reçu.")


async def _messages(websocket: WebSocket, connection: _Socket):
    """What the browser sends, parsed (None when unreadable); ends when the socket closes."""
    while True:
        raw = await websocket.receive_text()
        if len(raw) > MAX_MESSAGE_BYTES:
            await connection.send(
                {"type": "error", "code": "too-large", "message": "Message trop volumineux."}
            )
            continue
        try:
            yield json.loads(raw)
        except ValueError:
            yield None


async def _proxied(websocket: WebSocket, relay, owner: str, room: str, member: Member) -> None:
    """The call is served by another instance (video/relay.py): forward both ways until the socket closes."""
    conn = uuid.uuid4().hex
    connection = member.connection
    await relay.proxy_join(owner, room, conn, member)
    dropped = True
    try:
        async for message in _messages(websocket, connection):
            if isinstance(message, dict) and message.get("type") == "leave":
                dropped = False
                break
            await relay.proxy_message(owner, room, conn, message)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await relay.proxy_leave(owner, room, conn, dropped=dropped)
        await connection.close(1000, "bye")


def journal_for(sessionmaker):
    async def journal(room_id, kind, participant, name, details) -> None:
        async with transaction(sessionmaker) as session:
            await service.record_call_event(session, room_id, kind, participant, name, details)

    return journal


def history_for(sessionmaker):
    async def history(room_id):
        async with transaction(sessionmaker) as session:
            past = await service.call_history(session, room_id)
        return past

    return history


@router.websocket("/video/salles/{room_id}/ws")
async def signalling(websocket: WebSocket, room_id: uuid.UUID):
    app = websocket.app
    settings = app.state.settings
    hub: SignallingHub = app.state.video_hub
    if not _same_origin(websocket):
        await websocket.close(code=4403, reason="origin")
        return
    try:
        async with transaction(app.state.database.sessionmaker) as session:
            seat = await _seat(session, settings, websocket, room_id)
    except DomainError as exc:
        await websocket.accept()
        await websocket.send_text(
            json.dumps({"type": "error", "code": exc.code, "message": exc.message, "fatal": True})
        )
        await websocket.close(code=4403, reason=exc.code)
        return
    await websocket.accept()
    connection = _Socket(websocket)
    member = Member(seat.participant, seat.name, seat.role, connection)
    await connection.send(
        {
            "type": "config",
            "ice_servers": ice_servers(settings, seat.participant, clock.now()),
            "max_participants": settings.video_max_participants,
        }
    )
    relay = getattr(app.state, "video_relay", None)
    owner = await relay.owner_of(str(room_id)) if relay is not None else None
    if relay is not None and owner != relay.instance_id:
        await _proxied(websocket, relay, owner, str(room_id), member)
        return
    try:
        await hub.join(str(room_id), member)
    except RoomFull:
        await connection.send(
            {
                "type": "error",
                "code": "room-full",
                "fatal": True,
                "message": f"L'appel réunit déjà {settings.video_max_participants} participants : "
                "impossible de le rejoindre maintenant.",
            }
        )
        await connection.close(4009, "room-full")
        return
    dropped = True
    try:
        async for message in _messages(websocket, connection):
            if isinstance(message, dict) and message.get("type") == "leave":
                dropped = False
                break
            await hub.handle(str(room_id), member, message)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await hub.leave(str(room_id), member, dropped=dropped)
        await connection.close(1000, "bye")


__all__ = ["router", "journal_for", "history_for"]
