"""JSON routes of the scheduling domain (thin: parse, authorise through the principal, call one service)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.kit import clock
from telesante.scheduling import service
from telesante.scheduling.schemas import (
    AppointmentCancel,
    AppointmentCreate,
    AppointmentRead,
    AppointmentReschedule,
    CallPreparation,
    ExceptionCreate,
    ExceptionRead,
    ExceptionResult,
    PatternCreate,
    PatternRead,
    PatternResult,
    SiteCreate,
    SiteRead,
    SlotRead,
    WaitingCreate,
    WaitingRead,
)

router = APIRouter(prefix="/scheduling", tags=["rendez-vous"])
ICS_MEDIA_TYPE = "text/calendar; charset=utf-8"


def _site_read(site, staff) -> SiteRead:
    read = SiteRead.model_validate(site)
    read.staff_professional_ids = staff
    return read


@router.get("/sites", response_model=list[SiteRead])
async def list_sites(session: SessionDep, principal: PrincipalDep, organisation_id: uuid.UUID | None = None):
    """Lieux de téléconsultation de vos établissements (cabines, salles, domicile)."""
    return [
        _site_read(site, staff)
        for site, staff in await service.list_sites(session, principal, organisation_id)
    ]


@router.post("/sites", response_model=SiteRead, status_code=status.HTTP_201_CREATED)
async def create_site(session: SessionDep, principal: PrincipalDep, data: SiteCreate):
    """Déclarer un lieu de téléconsultation (administrateur de l'établissement)."""
    site = await service.create_site(session, principal, data)
    return _site_read(site, list(dict.fromkeys(data.staff_professional_ids)))


@router.post("/patterns", response_model=PatternResult, status_code=status.HTTP_201_CREATED)
async def add_pattern(
    session: SessionDep, principal: PrincipalDep, settings: SettingsDep, data: PatternCreate
):
    """Ouvrir des disponibilités récurrentes : les créneaux de toute la période sont créés."""
    pattern, created = await service.add_pattern(session, principal, data, settings)
    return PatternResult(pattern=PatternRead.model_validate(pattern), slots_created=created)


@router.get("/professionals/{professional_id}/patterns", response_model=list[PatternRead])
async def list_patterns(session: SessionDep, principal: PrincipalDep, professional_id: uuid.UUID):
    return await service.list_patterns(session, principal, professional_id)


@router.post("/patterns/{pattern_id}/end", response_model=PatternResult)
async def end_pattern(session: SessionDep, principal: PrincipalDep, pattern_id: uuid.UUID):
    """Arrêter une disponibilité : ses créneaux libres à venir disparaissent, les rendez-vous restent."""
    pattern, removed = await service.end_pattern(session, principal, pattern_id)
    return PatternResult(pattern=PatternRead.model_validate(pattern), slots_created=-removed)


@router.post("/exceptions", response_model=ExceptionResult, status_code=status.HTTP_201_CREATED)
async def add_exception(session: SessionDep, principal: PrincipalDep, data: ExceptionCreate):
    """Déclarer une indisponibilité (congés, formation) : les créneaux libres sont bloqués."""
    exception, blocked, to_move = await service.add_exception(session, principal, data)
    return ExceptionResult(
        exception=ExceptionRead.model_validate(exception),
        slots_blocked=blocked,
        appointments_to_move=[a.id for a in to_move],
    )


@router.delete("/exceptions/{exception_id}", status_code=status.HTTP_200_OK)
async def remove_exception(
    session: SessionDep, principal: PrincipalDep, exception_id: uuid.UUID
) -> dict[str, int]:
    return {"slots_freed": await service.remove_exception(session, principal, exception_id)}


@router.get("/offers/{offer_id}/slots", response_model=list[SlotRead])
async def free_slots(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    offer_id: uuid.UUID,
    starts_at: datetime | None = None,
    days: Annotated[int | None, Query(ge=1, le=366)] = None,
    professional_id: uuid.UUID | None = None,
):
    """Créneaux libres d'une offre de téléconsultation."""
    found = await service.list_free_slots(
        session,
        principal,
        offer_id,
        settings,
        starts_at=starts_at,
        days=days,
        professional_id=professional_id,
    )
    return [
        SlotRead.model_validate(slot).model_copy(update={"professional_name": name}) for slot, name in found
    ]


@router.post("/appointments", response_model=AppointmentRead, status_code=status.HTTP_201_CREATED)
async def book(session: SessionDep, principal: PrincipalDep, data: AppointmentCreate):
    """Réserver un créneau pour un patient (409 s'il vient d'être pris)."""
    return await service.book_appointment(session, principal, data)


@router.get("/appointments", response_model=list[AppointmentRead])
async def list_appointments(
    session: SessionDep,
    principal: PrincipalDep,
    day_from: date | None = Query(None, alias="from"),
    days: Annotated[int, Query(ge=1, le=92)] = 7,
    professional_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
):
    """Rendez-vous de vos établissements (côté lieu de soins ou côté médecin)."""
    return await service.list_appointments(
        session,
        principal,
        day_from=day_from or clock.to_paris(clock.now()).date(),
        days=days,
        professional_id=professional_id,
        patient_id=patient_id,
    )


@router.get("/appointments/{appointment_id}", response_model=AppointmentRead)
async def get_appointment(session: SessionDep, principal: PrincipalDep, appointment_id: uuid.UUID):
    return await service.get_appointment(session, principal, appointment_id)


@router.post("/appointments/{appointment_id}/prepare", response_model=AppointmentRead)
async def prepare(
    session: SessionDep, principal: PrincipalDep, appointment_id: uuid.UUID, data: CallPreparation
):
    """Avant l'appel : critères d'éligibilité (HAS), consentement vérifié, numéro de rappel ; ouvre l'acte."""
    return await service.prepare_call(session, principal, appointment_id, data)


@router.post("/appointments/{appointment_id}/cancel", response_model=AppointmentRead)
async def cancel(
    session: SessionDep, principal: PrincipalDep, appointment_id: uuid.UUID, data: AppointmentCancel
):
    """Annuler un rendez-vous programmé (motif obligatoire) : le créneau redevient libre."""
    return await service.cancel_appointment(session, principal, appointment_id, data.reason)


@router.post("/appointments/{appointment_id}/reschedule", response_model=AppointmentRead)
async def reschedule(
    session: SessionDep, principal: PrincipalDep, appointment_id: uuid.UUID, data: AppointmentReschedule
):
    """Reporter un rendez-vous sur un autre créneau : renvoie le nouveau rendez-vous."""
    return await service.reschedule_appointment(session, principal, appointment_id, data)


@router.post("/waiting", response_model=WaitingRead, status_code=status.HTTP_201_CREATED)
async def join_waiting_list(session: SessionDep, principal: PrincipalDep, data: WaitingCreate):
    """Soins non programmés : le patient attend le prochain médecin disponible de l'offre."""
    return await service.join_waiting_list(session, principal, data)


@router.get("/waiting")
async def waiting(session: SessionDep, principal: PrincipalDep) -> dict[str, list[WaitingRead]]:
    """Files d'attente : à prendre (médecins de l'offre, sans identité du patient) et celles de vos lieux."""
    queues = await service.waiting_queue(session, principal)
    return {key: [WaitingRead.model_validate(e) for e in entries] for key, entries in queues.items()}


@router.post(
    "/offers/{offer_id}/waiting/take", response_model=AppointmentRead, status_code=status.HTTP_201_CREATED
)
async def take_next(session: SessionDep, principal: PrincipalDep, offer_id: uuid.UUID):
    """Prendre en charge le patient qui attend depuis le plus longtemps : un rendez-vous commence maintenant."""
    return await service.take_next(session, principal, offer_id)


@router.post("/waiting/{entry_id}/cancel", response_model=WaitingRead)
async def cancel_waiting(
    session: SessionDep, principal: PrincipalDep, entry_id: uuid.UUID, data: AppointmentCancel
):
    return await service.cancel_waiting(session, principal, entry_id, data.reason)


@router.get("/me/appointments.ics", response_class=Response)
async def my_appointments_ics(session: SessionDep, principal: PrincipalDep):
    """Mes téléconsultations au format iCalendar."""
    return Response(
        await service.appointments_ics(session, principal.professional_id), media_type=ICS_MEDIA_TYPE
    )
