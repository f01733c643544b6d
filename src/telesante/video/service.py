"""Video call rules: the room of an appointment, who may enter it and as what, guests' one-time links, the call's
journal and what it tells the compte rendu."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.config import Settings
from telesante.kit import clock
from telesante.kit.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from telesante.requests.models import RequestReport
from telesante.requests.repository import RequestRepository
from telesante.requests.schemas import ReportCreate
from telesante.scheduling import service as scheduling
from telesante.scheduling.models import AppointmentStatus
from telesante.storage.blobs import BlobStore
from telesante.storage.content import check_upload_in_thread
from telesante.storage.service import save_blob
from telesante.video.models import (
    GUEST_ROLE_LABELS,
    CallEvent,
    CallEventKind,
    CallMessage,
    GuestLink,
    GuestRole,
    RoomStatus,
    VideoRoom,
)
from telesante.video.repository import (
    CallEventRepository,
    CallMessageRepository,
    GuestLinkRepository,
    RoomRepository,
)
from telesante.video.signalling import GUEST, HOST, PROFESSIONAL

GUEST_COOKIE = "ts_guest"


class NotPrepared(Conflict):
    code = "appel-non-prepare"
    title = "Téléconsultation à préparer"


class NotAnAppointmentCall(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "Cet appel appartient à un acte sans rendez-vous (alerte AVC) : son compte rendu se rédige et se signe "
            "dans le dossier de l'acte."
        )


class LinkUnusable(DomainError):
    status_code = 410
    code = "lien-inutilisable"
    title = "Lien d'invitation inutilisable"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Seat:
    """Who enters a room, and as what: the participant id the signalling knows them by, their name, their role."""

    room: VideoRoom
    participant: str
    name: str
    role: str
    guest_link_id: uuid.UUID | None = None


async def open_room(session: AsyncSession, principal: Principal, appointment_id: uuid.UUID) -> VideoRoom:
    """The call of an appointment (created the first time a party opens it)."""
    # visible through a clinical role (a medical secretariat books; it does not start calls), audited
    appointment = await scheduling.get_appointment(session, principal, appointment_id, clinical=True)
    repo = RoomRepository(session)
    room = await repo.for_appointment(appointment.id)
    if room is not None:
        return room
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict("Ce rendez-vous n'est plus programmé : l'appel ne peut pas commencer.")
    if appointment.prepared_at is None or appointment.request_id is None:
        raise NotPrepared(
            "Avant l'appel : vérifiez l'éligibilité à la téléconsultation, le consentement du patient et le numéro "
            "de rappel (« Préparer la téléconsultation »)."
        )
    room = await repo.add(
        VideoRoom(
            appointment_id=appointment.id,
            patient_id=appointment.patient_id,
            host_professional_id=appointment.professional_id,
            organisation_id=appointment.organisation_id,
            expert_organisation_id=appointment.expert_organisation_id,
            status=RoomStatus.OPEN,
            created_by_account_id=principal.account_id,
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="VideoRoom",
        object_id=room.id,
        patient_id=room.patient_id,
    )
    return room


async def open_request_room(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, *, host_professional_id: uuid.UUID
) -> tuple[VideoRoom, bool]:
    """The call of an act opened without an appointment (a stroke alert's neurology opinion), created the first
    time a party opens it, with the professional who took the act as its host. The caller's domain checked that
    the act may have a call now. Returns the room and whether it was created."""
    request = await RequestRepository(session).get_visible(principal, request_id)
    if request is None:
        raise NotFound("Demande introuvable.")
    repo = RoomRepository(session)
    room = await repo.for_request(request.id)
    if room is not None:
        if room.status != RoomStatus.OPEN:
            raise Conflict("Cet appel est terminé.")
        return room, False
    room = await repo.add(
        VideoRoom(
            request_id=request.id,
            patient_id=request.patient_id,
            host_professional_id=host_professional_id,
            organisation_id=request.requester_organisation_id,
            expert_organisation_id=request.expert_organisation_id,
            status=RoomStatus.OPEN,
            created_by_account_id=principal.account_id,
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="VideoRoom",
        object_id=room.id,
        patient_id=room.patient_id,
        details={"request_id": str(request.id)},
    )
    return room, True


async def room_of_request(session: AsyncSession, request_id: uuid.UUID) -> VideoRoom | None:
    """The call of an act the caller may already see (the caller checked the act)."""
    return await RoomRepository(session).for_request(request_id)


async def close_request_room(session: AsyncSession, request_id: uuid.UUID) -> VideoRoom | None:
    """The act is over (its compte rendu signed): its call closes. The caller ends the live room after commit."""
    room = await RoomRepository(session).for_request(request_id)
    if room is not None and room.status == RoomStatus.OPEN:
        room.status = RoomStatus.CLOSED
        room.closed_at = clock.now()
        await session.flush()
    return room


async def room_of_appointment(session: AsyncSession, appointment_id: uuid.UUID) -> VideoRoom | None:
    """The call of an appointment the caller may already see (the caller checked the appointment)."""
    return await RoomRepository(session).for_appointment(appointment_id)


async def visible_room(session: AsyncSession, principal: Principal, room_id: uuid.UUID) -> VideoRoom:
    room = await RoomRepository(session).get_visible(principal, room_id)
    if room is None:
        raise NotFound("Appel introuvable.")
    return room


def professional_seat(room: VideoRoom, principal: Principal) -> Seat:
    role = HOST if principal.professional_id == room.host_professional_id else PROFESSIONAL
    return Seat(room, f"a-{principal.account_id}", principal.display_name, role)


async def enter_as_professional(session: AsyncSession, principal: Principal, room_id: uuid.UUID) -> Seat:
    room = await visible_room(session, principal, room_id)
    if room.status != RoomStatus.OPEN:
        raise Conflict("Cet appel est terminé.")
    await record_access(
        session,
        principal,
        action=Action.READ,
        object_type="VideoRoom",
        object_id=room.id,
        patient_id=room.patient_id,
        details={"joined": True},
    )
    return professional_seat(room, principal)


# --- guests ---------------------------------------------------------------------------------------------------


async def create_guest_link(
    session: AsyncSession,
    principal: Principal,
    room_id: uuid.UUID,
    *,
    name: str,
    role: GuestRole,
    settings: Settings,
) -> tuple[GuestLink, str]:
    """A one-time invitation (a relative, an interpreter, the patient at home): the secret link is shown once."""
    room = await visible_room(session, principal, room_id)
    if room.status != RoomStatus.OPEN:
        raise Conflict("Cet appel est terminé.")
    name = " ".join(name.split())
    if not 2 <= len(name) <= 100:
        raise InvalidInput("Nom de la personne invitée : 2 à 100 caractères.", field="name")
    token = secrets.token_urlsafe(32)
    link = await GuestLinkRepository(session).add(
        GuestLink(
            room_id=room.id,
            token_hash=_hash(token),
            name=name,
            role=role,
            created_by_account_id=principal.account_id,
            created_by_name=principal.display_name,
            expires_at=clock.now() + timedelta(hours=settings.video_guest_link_hours),
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="GuestLink",
        object_id=link.id,
        patient_id=room.patient_id,
        details={"role": role.value},
    )
    return link, token


async def revoke_guest_link(
    session: AsyncSession, principal: Principal, room_id: uuid.UUID, link_id: uuid.UUID
) -> GuestLink:
    room = await visible_room(session, principal, room_id)
    link = await GuestLinkRepository(session).get(link_id)
    if link is None or link.room_id != room.id:
        raise NotFound("Invitation introuvable.")
    if link.revoked_at is None:
        link.revoked_at = clock.now()
        link.revoked_by_name = principal.display_name
        await session.flush()
        await record_access(
            session,
            principal,
            action=Action.UPDATE,
            object_type="GuestLink",
            object_id=link.id,
            patient_id=room.patient_id,
            details={"revoked": True},
        )
    return link


async def guest_links(session: AsyncSession, principal: Principal, room_id: uuid.UUID) -> list[GuestLink]:
    room = await visible_room(session, principal, room_id)
    return await GuestLinkRepository(session).for_room(room.id)


def _check_usable(link: GuestLink, now: datetime) -> None:
    if link.revoked_at is not None:
        raise LinkUnusable("Cette invitation a été annulée par le professionnel qui l'avait envoyée.")
    if clock.as_utc(link.expires_at) <= now:
        raise LinkUnusable("Cette invitation a expiré : demandez-en une nouvelle.")


async def check_guest_link(session: AsyncSession, token: str) -> GuestLink:
    """The invitation behind a link, still usable and not used yet (the page that asks to confirm)."""
    link = await GuestLinkRepository(session).by_token_hash(_hash(token[:100]))
    if link is None:
        raise NotFound("Invitation inconnue : vérifiez le lien reçu.")
    _check_usable(link, clock.now())
    if link.used_at is not None:
        raise LinkUnusable("Ce lien a déjà été utilisé : il ne sert qu'une fois. Demandez-en un nouveau.")
    room = await RoomRepository(session).get(link.room_id)
    if room is None or room.status != RoomStatus.OPEN:
        raise LinkUnusable("Cet appel est terminé.")
    return link


async def use_guest_link(session: AsyncSession, token: str) -> tuple[GuestLink, str]:
    """Spend a one-time link: this browser receives its own secret (cookie) to come back after a reload; the link
    itself then refuses anyone else."""
    link = await check_guest_link(session, token)
    browser_secret = secrets.token_urlsafe(32)
    link.used_at = clock.now()
    link.browser_hash = _hash(browser_secret)
    await session.flush()
    await record_access(
        session,
        None,
        action=Action.UPDATE,
        object_type="GuestLink",
        object_id=link.id,
        details={"used": True, "guest": link.name},
    )
    return link, f"{link.id}.{browser_secret}"


async def guest_seat(session: AsyncSession, cookie: str | None, room_id: uuid.UUID) -> Seat:
    """The guest this browser is (by its cookie), for this room; NotAuthenticated-like errors otherwise."""
    link_id, _, secret = (cookie or "").partition(".")
    try:
        link = await GuestLinkRepository(session).get(uuid.UUID(link_id)) if secret else None
    except ValueError:
        link = None
    if link is None or link.browser_hash is None or not hmac.compare_digest(link.browser_hash, _hash(secret)):
        raise Forbidden("Invitation absente de ce navigateur : ouvrez le lien reçu.")
    if link.room_id != room_id:
        raise NotFound("Appel introuvable.")
    _check_usable(link, clock.now())
    room = await RoomRepository(session).get(link.room_id)
    if room is None or room.status != RoomStatus.OPEN:
        raise LinkUnusable("Cet appel est terminé.")
    label = GUEST_ROLE_LABELS[link.role]
    return Seat(room, f"g-{link.id}", f"{link.name} ({label.lower()})", GUEST, link.id)


# --- journal and report ---------------------------------------------------------------------------------------


async def record_call_event(
    session: AsyncSession,
    room_id: str,
    kind: CallEventKind | None,
    participant: str,
    name: str,
    details: dict[str, Any],
) -> None:
    """The signalling's journal: a call event, or (kind None) a chat message."""
    room_uuid = uuid.UUID(room_id)
    if kind is None:
        await CallMessageRepository(session).add(
            CallMessage(
                room_id=room_uuid, participant=participant, participant_name=name, body=details["chat"]
            )
        )
        return
    await CallEventRepository(session).add(
        CallEvent(
            room_id=room_uuid, kind=kind, participant=participant, participant_name=name, details=details
        )
    )
    if kind in (CallEventKind.JOINED, CallEventKind.ADMITTED, CallEventKind.RECONNECTED):
        room = await RoomRepository(session).get(room_uuid)
        if room is not None and room.started_at is None:
            admitted = {
                e.participant
                for e in await CallEventRepository(session).for_room(room_uuid)
                if e.kind == CallEventKind.ADMITTED
                or (e.kind == CallEventKind.JOINED and e.details.get("role") == HOST)
            }
            if len(admitted) >= 2:
                room.started_at = clock.now()
                await session.flush()


async def call_history(session: AsyncSession, room_id: str) -> tuple[set[str], set[str]]:
    """What the signalling must remember of a call it (re)opens: who was admitted (the host included), and whose
    last connection dropped (their return is a reconnection, not a new arrival). Guests whose link was revoked
    since are not admitted any more."""
    room_uuid = uuid.UUID(room_id)
    admitted: set[str] = set()
    last: dict[str, CallEventKind] = {}
    for event in await CallEventRepository(session).for_room(room_uuid):
        if event.kind == CallEventKind.ADMITTED or (
            event.kind == CallEventKind.JOINED and event.details.get("role") == HOST
        ):
            admitted.add(event.participant)
        if event.kind in (
            CallEventKind.JOINED,
            CallEventKind.RECONNECTED,
            CallEventKind.LEFT,
            CallEventKind.DROPPED,
            CallEventKind.REFUSED,
        ):
            last[event.participant] = event.kind
    revoked = {
        f"g-{link.id}" for link in await GuestLinkRepository(session).for_room(room_uuid) if link.revoked_at
    }
    dropped = {who for who, kind in last.items() if kind == CallEventKind.DROPPED}
    return admitted - revoked, dropped


@dataclass(frozen=True)
class CallSummary:
    participants: list[str]
    started_at: datetime | None
    ended_at: datetime | None
    duration_minutes: int | None
    incidents: list[str]


async def call_summary(session: AsyncSession, principal: Principal, room_id: uuid.UUID) -> CallSummary:
    """What the compte rendu needs from the call: who took part, when, how long, and the technical incidents."""
    room = await visible_room(session, principal, room_id)
    events = await CallEventRepository(session).for_room(room.id)
    taking_part: dict[str, str] = {}
    for event in events:
        if event.kind == CallEventKind.ADMITTED or (
            event.kind == CallEventKind.JOINED and event.details.get("role") == HOST
        ):
            taking_part.setdefault(event.participant, event.participant_name)
    started = clock.as_utc(room.started_at) if room.started_at else None
    last = max((clock.as_utc(e.at) for e in events), default=None)
    ended = clock.as_utc(room.closed_at) if room.closed_at else last
    incidents = []
    drops = [e for e in events if e.kind == CallEventKind.DROPPED]
    if drops:
        names = sorted({e.participant_name for e in drops})
        back = sum(1 for e in events if e.kind == CallEventKind.RECONNECTED)
        incidents.append(f"{len(drops)} coupure(s) de connexion ({', '.join(names)}), {back} reconnexion(s)")
    restarts = sum(1 for e in events if e.kind == CallEventKind.ICE_RESTART)
    if restarts:
        incidents.append(f"{restarts} renégociation(s) du flux (ICE restart)")
    audio = [e for e in events if e.kind == CallEventKind.AUDIO_ONLY and e.details.get("on")]
    weak = sorted({e.participant_name for e in audio if e.details.get("weak_network")})
    chosen = sorted({e.participant_name for e in audio if not e.details.get("weak_network")} - set(weak))
    if weak:
        incidents.append("réseau faible : passage automatique en audio seul (" + ", ".join(weak) + ")")
    if chosen:
        incidents.append("passage en audio seul (" + ", ".join(chosen) + ")")
    full = sum(1 for e in events if e.kind == CallEventKind.ROOM_FULL)
    if full:
        incidents.append(f"{full} connexion(s) refusée(s) : appel complet")
    return CallSummary(
        participants=list(taking_part.values()),
        started_at=started,
        ended_at=ended if started else None,
        duration_minutes=round((ended - started).total_seconds() / 60) if started and ended else None,
        incidents=incidents,
    )


async def call_messages(session: AsyncSession, principal: Principal, room_id: uuid.UUID) -> list[CallMessage]:
    room = await visible_room(session, principal, room_id)
    return await CallMessageRepository(session).for_room(room.id)


async def share_file(
    session: AsyncSession,
    principal: Principal,
    store: BlobStore,
    room_id: uuid.UUID,
    filename: str,
    data: bytes,
    *,
    max_bytes: int,
) -> CallMessage:
    """A document or photo shared during the call (PDF, JPEG, PNG, checked by content), kept with the call."""
    seat = await enter_as_professional(session, principal, room_id)
    checked = await check_upload_in_thread(data, filename, max_bytes=max_bytes)
    key = await save_blob(session, store, data, checked.content_type)
    message = await CallMessageRepository(session).add(
        CallMessage(
            room_id=seat.room.id,
            participant=seat.participant,
            participant_name=seat.name,
            body=f"Document partagé : {checked.filename}",
            blob_key=key,
            filename=checked.filename,
            content_type=checked.content_type,
            size=checked.size,
        )
    )
    await CallEventRepository(session).add(
        CallEvent(
            room_id=seat.room.id,
            kind=CallEventKind.FILE_SHARED,
            participant=seat.participant,
            participant_name=seat.name,
            details={"filename": checked.filename, "sha256": checked.sha256},
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="CallMessage",
        object_id=message.id,
        patient_id=seat.room.patient_id,
        details={"file": checked.filename, "sha256": checked.sha256},
    )
    return message


async def read_shared_file(
    session: AsyncSession, store: BlobStore, seat: Seat, message_id: uuid.UUID
) -> tuple[CallMessage, bytes]:
    """A shared file, for a participant of its call (professional or admitted guest)."""
    message = await CallMessageRepository(session).get(message_id)
    if message is None or message.room_id != seat.room.id or not message.blob_key:
        raise NotFound("Document introuvable.")
    await record_access(
        session,
        None,
        action=Action.READ,
        object_type="CallMessage",
        object_id=message.id,
        patient_id=seat.room.patient_id,
        details={"by": seat.name},
    )
    return message, await store.get(message.blob_key)


__all__ = ["GUEST_COOKIE", "LinkUnusable", "Seat", "Forbidden"]


# --- after the call -------------------------------------------------------------------------------------------

ROLE_IN_REPORT = {HOST: "médecin téléconsultant", PROFESSIONAL: "professionnel de santé"}


async def report_draft(session: AsyncSession, principal: Principal, room_id: uuid.UUID) -> dict[str, Any]:
    """The compte rendu's fields as the call saw them: participants (with their quality), date and time,
    technical incidents; the doctor completes and signs."""
    room = await visible_room(session, principal, room_id)
    if room.appointment_id is None:
        raise NotAnAppointmentCall()
    summary = await call_summary(session, principal, room_id)
    events = await CallEventRepository(session).for_room(room.id)
    roles: dict[str, str] = {}
    for event in events:
        if event.kind == CallEventKind.JOINED:
            roles.setdefault(event.participant, event.details.get("role", ""))
    links = {f"g-{link.id}": link for link in await GuestLinkRepository(session).for_room(room.id)}
    participants = []
    for event in events:
        if event.participant in {p["id"] for p in participants}:
            continue
        if event.kind == CallEventKind.ADMITTED or (
            event.kind == CallEventKind.JOINED and event.details.get("role") == HOST
        ):
            link = links.get(event.participant)
            if link is not None:
                name, role = link.name, GUEST_ROLE_LABELS[link.role].lower()
            else:
                name, role = event.participant_name, ROLE_IN_REPORT.get(roles.get(event.participant, ""), "")
            participants.append({"id": event.participant, "name": name, "role": role or "participant"})
    participants.sort(key=lambda p: p["role"] != ROLE_IN_REPORT[HOST])  # the doctor first, then as they came
    appointment = await scheduling.get_appointment(session, principal, room.appointment_id, clinical=True)
    if not participants:
        participants.append({"id": "", "name": principal.display_name, "role": ROLE_IN_REPORT[HOST]})
    details = "; ".join(summary.incidents)
    return {
        "room": room,
        "appointment": appointment,
        "summary": summary,
        "participants": [{"name": p["name"], "role": p["role"]} for p in participants],
        "performed_at": summary.started_at or clock.as_utc(appointment.starts_at),
        "duration_minutes": summary.duration_minutes,
        "technical_incident": bool(summary.incidents),
        "technical_incident_details": details,
    }


async def appointment_of(session: AsyncSession, principal: Principal, room: VideoRoom):
    if room.appointment_id is None:
        raise NotAnAppointmentCall()
    return await scheduling.get_appointment(session, principal, room.appointment_id, clinical=True)


async def finish_call(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    store: BlobStore,
    room_id: uuid.UUID,
    data: ReportCreate,
) -> RequestReport:
    """The doctor ends the teleconsultation with the signed compte rendu (R.6316-4): the act is answered and its
    report signed, the appointment fulfilled, the call closed."""
    from telesante.requests.service import complete_scheduled_act, sign_report

    room = await visible_room(session, principal, room_id)
    if room.appointment_id is None:
        raise NotAnAppointmentCall()
    if principal.professional_id != room.host_professional_id:
        raise Forbidden("Seul le médecin qui a consulté rédige et signe le compte rendu.")
    appointment = await scheduling.get_appointment(session, principal, room.appointment_id, clinical=True)
    if appointment.request_id is None:  # pragma: no cover - a room exists only for a prepared appointment
        raise NotPrepared("Cette téléconsultation n'a pas d'acte ouvert.")
    await complete_scheduled_act(session, principal, appointment.request_id, data.conclusion)
    report = await sign_report(session, principal, settings, store, appointment.request_id, data)
    await scheduling.mark_fulfilled(session, appointment.id)
    if room.status == RoomStatus.OPEN:
        room.status = RoomStatus.CLOSED
        room.closed_at = clock.now()
        await session.flush()
    return report
