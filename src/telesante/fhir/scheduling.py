"""Teleconsultation scheduling and calls as FHIR R4 resources (read and search):

- **Schedule** — a doctor's running availability for an offer (one per weekly pattern): actor Practitioner and
  HealthcareService, serviceType teleconsultation, planningHorizon the pattern's validity;
- **Slot** — a free period of a Schedule (only free slots are searchable: what a third-party booking tool needs);
- **Appointment** — a booked teleconsultation: status, serviceType, start/end, the slot, the patient and the doctor
  as participants, the reason, the act (basedOn ServiceRequest), the cancellation;
- **Encounter** — the call itself, class ``VR`` (virtual, v3 ActCode): status, period, the appointment, the act. The
  call of an act opened without an appointment (a stroke alert's neurology opinion) has no appointment: it names
  its act (basedOn) and the stroke case's Encounter it belongs to (partOf, see ``fhir/stroke.py``, which also serves
  the Encounter search by patient over both kinds).

Access goes through the scheduling and video services (the same rules as the pages) — a patient's calls through
the appointment's one rule (``AppointmentRepository.list_visible``, no service lists them over the whole history);
every read of an Appointment or Encounter is audited with its patient."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.schedule import Schedule
from fhir.resources.R4B.slot import Slot as FhirSlot
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.config import Settings
from telesante.fhir.search import InvalidSearch, SearchQuery, parse_date_range, reference_param, resource_id
from telesante.kit import clock
from telesante.kit.errors import NotFound
from telesante.scheduling import service as scheduling
from telesante.scheduling.models import Appointment, AppointmentStatus, AvailabilityPattern, Slot, SlotStatus
from telesante.scheduling.repository import AppointmentRepository
from telesante.video import service as video
from telesante.video.models import RoomStatus, VideoRoom

SCHEDULE_PARAMS = ("actor", "active")
SLOT_PARAMS = ("schedule", "status", "start")
APPOINTMENT_PARAMS = ("patient", "practitioner", "date", "status")
ACT_SYSTEM = "urn:telesante:acte"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
VIRTUAL_CLASS = {"system": V3_ACT_CODE, "code": "VR", "display": "virtual"}
SERVICE_TYPE = {"coding": [{"system": ACT_SYSTEM, "code": "teleconsultation", "display": "Téléconsultation"}]}
# the call of an act opened without an appointment: a tele-expertise (the stroke alert's neurology opinion)
EXPERTISE_SERVICE_TYPE = {
    "coding": [{"system": ACT_SYSTEM, "code": "teleexpertise", "display": "Téléexpertise"}]
}
APPOINTMENT_STATUS = {
    AppointmentStatus.BOOKED: "booked",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.FULFILLED: "fulfilled",
    AppointmentStatus.NOSHOW: "noshow",
}
SLOT_STATUS = {SlotStatus.FREE: "free", SlotStatus.BOOKED: "busy", SlotStatus.BLOCKED: "busy-unavailable"}
# A patient's whole history of teleconsultations (the Encounter search by patient has no default period).
ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


# --- resources ----------------------------------------------------------------------------------------------


def schedule_resource(pattern: AvailabilityPattern) -> Schedule:
    return Schedule(
        id=str(pattern.id),
        active=pattern.ended_at is None,
        serviceType=[SERVICE_TYPE],
        actor=[
            {"reference": f"Practitioner/{pattern.professional_id}"},
            {"reference": f"HealthcareService/{pattern.offer_id}"},
        ],
        planningHorizon={"start": pattern.valid_from.isoformat(), "end": pattern.valid_until.isoformat()},
        comment=(
            f"Jours ISO {','.join(map(str, pattern.weekdays))}, {pattern.start_time:%H:%M}–{pattern.end_time:%H:%M} "
            f"(heure de Paris), créneaux de {pattern.slot_minutes} min"
        ),
    )


def slot_resource(slot: Slot) -> FhirSlot:
    return FhirSlot(
        id=str(slot.id),
        schedule={"reference": f"Schedule/{slot.pattern_id}"},
        status=SLOT_STATUS[slot.status],
        start=clock.as_utc(slot.starts_at),
        end=clock.as_utc(slot.ends_at),
        serviceType=[SERVICE_TYPE],
    )


def appointment_resource(appointment: Appointment) -> FhirAppointment:
    resource = {
        "id": str(appointment.id),
        "status": APPOINTMENT_STATUS[appointment.status],
        "serviceType": [SERVICE_TYPE],
        "description": appointment.reason,
        "start": clock.as_utc(appointment.starts_at),
        "end": clock.as_utc(appointment.ends_at),
        "created": clock.as_utc(appointment.created_at).isoformat() if appointment.created_at else None,
        "participant": [
            {
                "actor": {"reference": f"Patient/{appointment.patient_id}"},
                "status": "accepted",
                "required": "required",
            },
            {
                "actor": {"reference": f"Practitioner/{appointment.professional_id}"},
                "status": "accepted",
                "required": "required",
            },
        ],
    }
    if appointment.slot_id:
        resource["slot"] = [{"reference": f"Slot/{appointment.slot_id}"}]
    if appointment.request_id:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{appointment.request_id}"}]
    if appointment.status == AppointmentStatus.CANCELLED and appointment.cancel_reason:
        resource["cancelationReason"] = {"text": appointment.cancel_reason}
    if appointment.callback_phone:
        resource["comment"] = f"Numéro de rappel si la vidéo échoue : {appointment.callback_phone}"
    return FhirAppointment(**{k: v for k, v in resource.items() if v is not None})


def encounter_resource(
    room: VideoRoom, request_id: uuid.UUID | None, part_of: uuid.UUID | None = None
) -> Encounter:
    """``request_id``: the act of the call (its appointment's, or the room's own when opened without one);
    ``part_of``: the Encounter of the stroke case the call belongs to."""
    if room.status == RoomStatus.CLOSED:
        status = "finished"
    elif room.started_at is not None:
        status = "in-progress"
    else:
        status = "planned"
    period = {}
    if room.started_at:
        period["start"] = clock.as_utc(room.started_at)
    if room.closed_at:
        period["end"] = clock.as_utc(room.closed_at)
    resource = {
        "id": str(room.id),
        "status": status,
        "class": VIRTUAL_CLASS,
        "serviceType": SERVICE_TYPE if room.appointment_id is not None else EXPERTISE_SERVICE_TYPE,
        "subject": {"reference": f"Patient/{room.patient_id}"},
        "participant": [{"individual": {"reference": f"Practitioner/{room.host_professional_id}"}}],
    }
    if room.appointment_id is not None:
        resource["appointment"] = [{"reference": f"Appointment/{room.appointment_id}"}]
    if period:
        resource["period"] = period
    request_id = request_id or room.request_id
    if request_id:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{request_id}"}]
    if part_of:
        resource["partOf"] = {"reference": f"Encounter/{part_of}"}
    return Encounter(**resource)


# --- reads and searches ---------------------------------------------------------------------------------------


async def read_schedule(session: AsyncSession, principal: Principal, schedule_id: str) -> AvailabilityPattern:
    return await scheduling.get_visible_pattern(
        session, principal, resource_id(schedule_id, "Agenda introuvable.")
    )


async def schedules(
    session: AsyncSession, principal: Principal, query: SearchQuery
) -> list[AvailabilityPattern]:
    if "actor" not in query.values:
        raise InvalidSearch("actor : Practitioner/<id> est obligatoire.", field="actor")
    professional_id = reference_param(query.values["actor"], "Practitioner", "actor")
    found = await scheduling.visible_patterns(session, principal, professional_id)
    if query.values.get("active") == "false":
        return []
    return found


async def read_slot(session: AsyncSession, principal: Principal, slot_id: str) -> Slot:
    return await scheduling.get_visible_slot(session, principal, resource_id(slot_id, "Créneau introuvable."))


async def slots(
    session: AsyncSession, principal: Principal, settings: Settings, query: SearchQuery
) -> list[Slot]:
    """Free slots of one Schedule (the booking horizon at most)."""
    if "schedule" not in query.values:
        raise InvalidSearch("schedule : Schedule/<id> est obligatoire.", field="schedule")
    if query.values.get("status", "free") != "free":
        raise InvalidSearch("status : seuls les créneaux libres (free) sont recherchés.", field="status")
    pattern_id = reference_param(query.values["schedule"], "Schedule", "schedule")
    try:
        pattern = await scheduling.get_visible_pattern(session, principal, pattern_id)
    except NotFound:
        return []
    start, end = parse_date_range("start", query.repeated.get("start", []))
    days = None
    if end is not None:
        days = max(1, min(366, (end - (start or clock.now())).days + 1))
    found = await scheduling.list_free_slots(
        session,
        principal,
        pattern.offer_id,
        settings,
        starts_at=start,
        days=days,
        professional_id=pattern.professional_id,
    )
    return [
        slot
        for slot, _name in found
        if slot.pattern_id == pattern.id and (end is None or slot.starts_at < end)
    ]


async def read_appointment(session: AsyncSession, principal: Principal, appointment_id: str) -> Appointment:
    return await scheduling.get_appointment(
        session, principal, resource_id(appointment_id, "Rendez-vous introuvable.")
    )


async def appointments(session: AsyncSession, principal: Principal, query: SearchQuery) -> list[Appointment]:
    """Appointments of the token holder's organisations over a period (date: at most 92 days; default: the next
    14 days from today)."""
    values = query.values
    start, end = parse_date_range("date", query.repeated.get("date", []))
    now = clock.now()
    start = start or datetime.combine(clock.to_paris(now).date(), datetime.min.time(), tzinfo=clock.PARIS)
    end = end or start + timedelta(days=14)
    days = (end - start).days + (1 if (end - start) % timedelta(days=1) else 0)
    if not 1 <= days <= 92:
        raise InvalidSearch("date : période d'au plus 92 jours.", field="date")
    patient_id = reference_param(values["patient"], "Patient", "patient") if "patient" in values else None
    practitioner = (
        reference_param(values["practitioner"], "Practitioner", "practitioner")
        if "practitioner" in values
        else None
    )
    found = await scheduling.list_appointments(
        session,
        principal,
        day_from=clock.to_paris(start).date(),
        days=days,
        professional_id=practitioner,
        patient_id=patient_id,
    )
    found = [a for a in found if start <= clock.as_utc(a.starts_at) < end]
    if "status" in values:
        wanted = values["status"]
        if wanted not in APPOINTMENT_STATUS.values():
            raise InvalidSearch(
                f"status : valeur inconnue (attendu : {', '.join(APPOINTMENT_STATUS.values())}).",
                field="status",
            )
        found = [a for a in found if APPOINTMENT_STATUS[a.status] == wanted]
    return found


async def read_encounter(
    session: AsyncSession, principal: Principal, encounter_id: str
) -> tuple[VideoRoom, uuid.UUID | None]:
    room = await video.visible_room(
        session, principal, resource_id(encounter_id, "Consultation introuvable.")
    )
    if room.appointment_id is None:  # the call of an act opened without an appointment (stroke alert)
        await record_access(
            session,
            principal,
            action=Action.READ,
            object_type="VideoRoom",
            object_id=room.id,
            patient_id=room.patient_id,
        )
        return room, room.request_id
    appointment = await video.appointment_of(session, principal, room)  # audited with the patient
    return room, appointment.request_id or room.request_id


async def encounters(
    session: AsyncSession, principal: Principal, query: SearchQuery
) -> list[tuple[VideoRoom, uuid.UUID | None]]:
    if "appointment" not in query.values:
        raise InvalidSearch("appointment : Appointment/<id> est obligatoire.", field="appointment")
    appointment_id = reference_param(query.values["appointment"], "Appointment", "appointment")
    try:
        appointment = await scheduling.get_appointment(session, principal, appointment_id)
    except NotFound:
        return []
    room = await video.room_of_appointment(session, appointment.id)
    return [(room, appointment.request_id)] if room is not None else []


async def patient_encounters(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID
) -> list[tuple[VideoRoom, uuid.UUID | None]]:
    """The calls of a patient's teleconsultations, each with its act, for whoever may see their appointment (the
    appointment's one rule, ``AppointmentRepository.list_visible``: a call of an appointment is opened with the
    appointment's two organisations, so this is the call's rule as well). Not audited here: the caller audits what
    it publishes."""
    appointments = await AppointmentRepository(session).list_visible(
        principal, *ALL_TIME, patient_id=patient_id
    )
    found = []
    for appointment in appointments:  # a room exists only for an appointment prepared and opened: a few
        room = await video.room_of_appointment(session, appointment.id)
        if room is not None:
            found.append((room, appointment.request_id))
    return found
