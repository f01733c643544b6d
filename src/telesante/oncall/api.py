"""JSON routes of the on-call domain (thin: parse, authorise through the principal, call one service)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.kit import clock
from telesante.oncall import service
from telesante.oncall.schemas import (
    CoverageRead,
    OnCallPage,
    OnDuty,
    PatternCreate,
    ReplacementCreate,
    RotaCreate,
    RotaRead,
    RotaUpdate,
    ShiftChangeRead,
    ShiftCreate,
    ShiftRead,
    SwapCreate,
)

router = APIRouter(tags=["gardes"])
ICS_MEDIA_TYPE = "text/calendar; charset=utf-8"


async def _rota_read(session, rota) -> RotaRead:
    from telesante.oncall.repository import RotaRepository

    read = RotaRead.model_validate(rota)
    read.organisation_ids = await RotaRepository(session).organisation_ids(rota.id)
    return read


@router.get("/rotas", response_model=list[RotaRead])
async def list_rotas(session: SessionDep, principal: PrincipalDep):
    """Listes de garde de vos établissements."""
    return [await _rota_read(session, r) for r in await service.list_rotas(session, principal)]


@router.post("/rotas", response_model=RotaRead, status_code=status.HTTP_201_CREATED)
async def create_rota(session: SessionDep, principal: PrincipalDep, data: RotaCreate):
    """Créer une liste de garde (administrateur de l'établissement)."""
    return await _rota_read(session, await service.create_rota(session, principal, data))


@router.get("/rotas/{rota_id}", response_model=RotaRead)
async def get_rota(session: SessionDep, principal: PrincipalDep, rota_id: uuid.UUID):
    return await _rota_read(session, await service.get_rota(session, principal, rota_id))


@router.patch("/rotas/{rota_id}", response_model=RotaRead)
async def update_rota(session: SessionDep, principal: PrincipalDep, rota_id: uuid.UUID, data: RotaUpdate):
    return await _rota_read(session, await service.update_rota(session, principal, rota_id, data))


@router.get("/rotas/{rota_id}/shifts", response_model=list[ShiftRead])
async def list_shifts(
    session: SessionDep,
    principal: PrincipalDep,
    rota_id: uuid.UUID,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
):
    """Gardes de la liste sur une période (par défaut : les 30 prochains jours)."""
    return await service.list_shifts(session, principal, rota_id, start, end)


@router.post("/rotas/{rota_id}/shifts", response_model=ShiftRead, status_code=status.HTTP_201_CREATED)
async def add_shift(session: SessionDep, principal: PrincipalDep, rota_id: uuid.UUID, data: ShiftCreate):
    """Ajouter une garde ponctuelle (heure sans décalage : heure de Paris)."""
    return await service.add_shift(session, principal, rota_id, data)


@router.post("/rotas/{rota_id}/patterns", response_model=list[ShiftRead], status_code=status.HTTP_201_CREATED)
async def add_pattern(session: SessionDep, principal: PrincipalDep, rota_id: uuid.UUID, data: PatternCreate):
    """Ajouter un modèle hebdomadaire (heures de Paris) et créer ses gardes sur la période."""
    _, shifts = await service.add_pattern(session, principal, rota_id, data)
    return shifts


@router.get("/rotas/{rota_id}/coverage", response_model=CoverageRead)
async def coverage(
    session: SessionDep,
    principal: PrincipalDep,
    rota_id: uuid.UUID,
    days: Annotated[int, Query(ge=1, le=366)] = service.COVERAGE_DAYS,
):
    """Créneaux sans titulaire de garde (à la minute) sur les prochains jours."""
    return await service.coverage(session, principal, rota_id, days=days)


@router.get("/rotas/{rota_id}/on-duty", response_model=OnDuty)
async def on_duty(
    session: SessionDep, principal: PrincipalDep, rota_id: uuid.UUID, at: datetime | None = None
):
    """Qui est de garde à cet instant (par défaut : maintenant)."""
    await service.get_rota(session, principal, rota_id)
    return await service.on_duty(session, rota_id, at or clock.now())


@router.post("/shifts/{shift_id}/replacement", response_model=ShiftRead)
async def replace_shift(
    session: SessionDep, principal: PrincipalDep, shift_id: uuid.UUID, data: ReplacementCreate
):
    """Céder une garde à un autre membre (remplacement)."""
    return await service.replace_shift(session, principal, shift_id, data)


@router.post("/shifts/{shift_id}/swap", response_model=list[ShiftRead])
async def swap_shifts(session: SessionDep, principal: PrincipalDep, shift_id: uuid.UUID, data: SwapCreate):
    """Échanger deux gardes entre leurs titulaires."""
    return list(await service.swap_shifts(session, principal, shift_id, data))


@router.post("/shifts/{shift_id}/cancel", response_model=ShiftRead)
async def cancel_shift(session: SessionDep, principal: PrincipalDep, shift_id: uuid.UUID):
    return await service.cancel_shift(session, principal, shift_id)


@router.get("/shifts/{shift_id}/changes", response_model=list[ShiftChangeRead])
async def shift_changes(session: SessionDep, principal: PrincipalDep, shift_id: uuid.UUID):
    """Historique des remplacements et échanges d'une garde."""
    return await service.shift_changes(session, principal, shift_id)


@router.get("/oncall/pages/{page_id}", response_model=OnCallPage)
async def get_page(session: SessionDep, principal: PrincipalDep, page_id: uuid.UUID):
    return await service.get_page(session, principal, page_id)


@router.post("/oncall/pages/{page_id}/acknowledge", response_model=OnCallPage)
async def acknowledge_page(session: SessionDep, principal: PrincipalDep, page_id: uuid.UUID):
    """Acquitter un appel (la personne appelée seulement) : l'escalade est annulée."""
    return await service.acknowledge_page(session, principal, page_id)


@router.get("/me/shifts.ics", response_class=Response)
async def my_shifts_ics(session: SessionDep, principal: PrincipalDep):
    """Mes gardes au format iCalendar."""
    body = await service.shifts_ics(session, principal.professional_id)
    return Response(body, media_type=ICS_MEDIA_TYPE)


@router.post("/me/calendar-feed", status_code=status.HTTP_201_CREATED)
async def create_calendar_feed(session: SessionDep, principal: PrincipalDep) -> dict[str, str]:
    """Adresse secrète d'abonnement à mes gardes (l'ancienne cesse de fonctionner)."""
    token = await service.create_calendar_feed(session, principal)
    return {"path": f"/calendrier/gardes/{token}.ics"}
