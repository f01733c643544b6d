"""On-call pages: rota list, rota detail (week grid, coverage gaps, forms for editors), "mes gardes" with the
acknowledge button (htmx, works without JavaScript too), a page's journal, and the ICS feed by secret address."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.auth.principal import Principal
from telesante.kit import clock
from telesante.kit.errors import DomainError, Forbidden
from telesante.kit.schemas import parse_input
from telesante.oncall import service
from telesante.oncall.models import (
    PAGE_STATUS_LABELS,
    SCOPE_LABELS,
    SHIFT_ROLE_LABELS,
    TARGET_LABELS,
    RotaScope,
)
from telesante.oncall.schemas import PatternCreate, ReplacementCreate, RotaCreate, ShiftCreate
from telesante.web.forms import form_values, labelled_message
from telesante.web.render import form_error, redirect, render

router = APIRouter(include_in_schema=False)

WEEKDAY_LABELS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
LABELS = {
    "SCOPE_LABELS": SCOPE_LABELS,
    "SHIFT_ROLE_LABELS": SHIFT_ROLE_LABELS,
    "PAGE_STATUS_LABELS": PAGE_STATUS_LABELS,
    "TARGET_LABELS": TARGET_LABELS,
    "WEEKDAY_LABELS": WEEKDAY_LABELS,
}
FIELD_LABELS = {
    "name": "Nom",
    "scope": "Périmètre",
    "service_id": "Service",
    "network_organisation_ids": "Établissements du réseau",
    "head_professional_id": "Chef de service",
    "ack_minutes": "Délai d'acquittement",
    "professional_id": "Professionnel",
    "role": "Rôle",
    "starts_at": "Début",
    "ends_at": "Fin",
    "note": "Note",
    "label": "Libellé",
    "weekdays": "Jours",
    "start_time": "Heure de début",
    "end_time": "Heure de fin",
    "valid_from": "Du",
    "valid_until": "Au",
    "to_professional_id": "Remplaçant",
    "reason": "Motif",
}


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _week_start(value: str | None) -> date:
    today = clock.to_paris(clock.now()).date()
    try:
        day = date.fromisoformat(value) if value else today
    except ValueError:
        day = today
    return day - timedelta(days=day.weekday())


async def _detail_context(
    session, principal: Principal, rota_id: uuid.UUID, week: str | None = None
) -> dict[str, Any]:
    details = await service.rota_details(session, principal, rota_id)
    monday = _week_start(week)
    start = clock.as_utc(datetime.combine(monday, datetime.min.time(), tzinfo=clock.PARIS))
    end = clock.as_utc(datetime.combine(monday + timedelta(days=7), datetime.min.time(), tzinfo=clock.PARIS))
    shifts = await service.list_shifts(session, principal, rota_id, start, end)
    days = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        day_start = clock.as_utc(datetime.combine(day, datetime.min.time(), tzinfo=clock.PARIS))
        day_end = clock.as_utc(
            datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=clock.PARIS)
        )
        days.append(
            {
                "date": day,
                "label": f"{WEEKDAY_LABELS[day.weekday()]} {day.strftime('%d/%m')}",
                "shifts": [s for s in shifts if s["starts_at"] < day_end and s["ends_at"] > day_start],
            }
        )
    return {
        **details,
        **LABELS,
        "days": days,
        "week_shifts": shifts,
        "monday": monday,
        "previous_week": (monday - timedelta(days=7)).isoformat(),
        "next_week": (monday + timedelta(days=7)).isoformat(),
        "coverage": await service.coverage(session, principal, rota_id),
        "member_choices": [(p.id, p.display_name) for p in details["members"]],
        "role_choices": list(SHIFT_ROLE_LABELS.items()),
        "values": {},
    }


@router.get("/gardes")
async def rotas_page(request: Request, session: SessionDep, principal: PrincipalDep):
    rotas = await service.list_rotas(session, principal)
    heads = await service.professional_names(session, {r.head_professional_id for r in rotas})
    admin_organisations = [
        (g.organisation_id, g.organisation_name)
        for g in principal.grants
        if g.organisation_id is not None and principal.can_administer(g.organisation_id)
    ]
    return render(
        request,
        "oncall/list.html",
        {"rotas": rotas, "heads": heads, "admin_organisations": dict(admin_organisations), **LABELS},
    )


async def _new_context(session, principal: Principal, organisation_id: uuid.UUID) -> dict[str, Any]:
    from telesante.directory.repository import OrganisationRepository, ProfessionalRepository

    organisation = await OrganisationRepository(session).get_detail(organisation_id)
    members = await ProfessionalRepository(session).members_of(organisation_id)
    return {
        "organisation": organisation,
        "services": [(s.id, s.name) for s in (organisation.services if organisation else [])],
        "heads": sorted({(p.id, p.display_name) for _, p in members}, key=lambda item: item[1]),
        "scopes": list(SCOPE_LABELS.items()),
        **LABELS,
    }


def _require_admin(principal: Principal, organisation_id: uuid.UUID) -> None:
    if not principal.can_administer(organisation_id):
        raise Forbidden("Seul un administrateur de l'établissement peut créer une liste de garde.")


@router.get("/gardes/nouvelle")
async def new_rota_page(
    request: Request, session: SessionDep, principal: PrincipalDep, organisation_id: uuid.UUID
):
    _require_admin(principal, organisation_id)
    context = await _new_context(session, principal, organisation_id)
    return render(request, "oncall/new.html", {**context, "values": {"scope": "service"}})


@router.post("/gardes/nouvelle")
async def create_rota_page(
    request: Request, session: SessionDep, principal: PrincipalDep, organisation_id: uuid.UUID
):
    _require_admin(principal, organisation_id)
    submitted = await request.form()
    values = form_values(submitted, ["name", "scope", "service_id", "head_professional_id", "ack_minutes"])
    network = [v.strip() for v in str(submitted.get("network_finess_ids", "")).split(",") if v.strip()]
    context = {**await _new_context(session, principal, organisation_id), "values": values}
    try:
        network_ids = await _organisation_ids_from_finess(session, network)
        data = parse_input(
            RotaCreate,
            {**values, "organisation_id": str(organisation_id), "network_organisation_ids": network_ids},
        )
        rota = await service.create_rota(session, principal, data)
    except DomainError as exc:
        return form_error(request, "oncall/new.html", context, labelled_message(exc, FIELD_LABELS), exc.field)
    return redirect(f"/gardes/{rota.id}")


async def _organisation_ids_from_finess(session, finess_numbers: list[str]) -> list[str]:
    from telesante.directory.repository import OrganisationRepository
    from telesante.kit.errors import InvalidInput

    ids = []
    for finess in finess_numbers:
        organisation = await OrganisationRepository(session).get_by_finess(finess)
        if organisation is None:
            raise InvalidInput(f"Aucun établissement de FINESS {finess}.", field="network_organisation_ids")
        ids.append(str(organisation.id))
    return ids


@router.get("/gardes/mes-gardes")
async def my_shifts_page(request: Request, session: SessionDep, principal: PrincipalDep):
    return render(
        request,
        "oncall/mine.html",
        {
            "shifts": await service.my_shifts(session, principal),
            "pages": await service.my_pages(session, principal),
            **LABELS,
        },
    )


@router.post("/gardes/mes-gardes/calendrier")
async def calendar_feed_page(request: Request, session: SessionDep, principal: PrincipalDep):
    token = await service.create_calendar_feed(session, principal)
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "oncall/mine.html",
        {
            "shifts": await service.my_shifts(session, principal),
            "pages": await service.my_pages(session, principal),
            "feed_url": f"{base}/calendrier/gardes/{token}.ics",
            **LABELS,
        },
    )


@router.get("/gardes/appels/{page_id}")
async def page_detail(request: Request, session: SessionDep, principal: PrincipalDep, page_id: uuid.UUID):
    page = await service.get_page(session, principal, page_id)
    names = await service.professional_names(
        session, {page.professional_id} | {e.professional_id for e in page.events if e.professional_id}
    )
    return render(request, "oncall/page.html", {"page": page, "names": names, **LABELS})


@router.post("/gardes/appels/{page_id}/acquitter")
async def acknowledge_page(
    request: Request, session: SessionDep, principal: PrincipalDep, page_id: uuid.UUID
):
    page = await service.acknowledge_page(session, principal, page_id)
    if _is_htmx(request):
        return render(request, "oncall/_page_status.html", {"page": page, **LABELS})
    return redirect(f"/gardes/appels/{page.id}")


@router.get("/gardes/{rota_id}")
async def rota_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    rota_id: uuid.UUID,
    semaine: str | None = None,
):
    return render(request, "oncall/detail.html", await _detail_context(session, principal, rota_id, semaine))


async def _form_action(request: Request, session, principal: Principal, rota_id: uuid.UUID, fields, action):
    submitted = await request.form()
    values = form_values(submitted, fields)
    try:
        await action(values, submitted)
    except DomainError as exc:
        context = await _detail_context(session, principal, rota_id)
        return form_error(
            request,
            "oncall/detail.html",
            {**context, "values": values},
            labelled_message(exc, FIELD_LABELS),
            exc.field,
        )
    return redirect(f"/gardes/{rota_id}")


@router.post("/gardes/{rota_id}/creneaux")
async def add_shift_page(request: Request, session: SessionDep, principal: PrincipalDep, rota_id: uuid.UUID):
    async def action(values, _submitted):
        await service.add_shift(session, principal, rota_id, parse_input(ShiftCreate, values))

    return await _form_action(
        request,
        session,
        principal,
        rota_id,
        ["professional_id", "role", "starts_at", "ends_at", "note"],
        action,
    )


@router.post("/gardes/{rota_id}/modeles")
async def add_pattern_page(
    request: Request, session: SessionDep, principal: PrincipalDep, rota_id: uuid.UUID
):
    fields = ["professional_id", "role", "label", "start_time", "end_time", "valid_from", "valid_until"]

    async def action(values, submitted):
        weekdays = [v for v in submitted.getlist("weekdays") if isinstance(v, str)]
        await service.add_pattern(
            session, principal, rota_id, parse_input(PatternCreate, {**values, "weekdays": weekdays})
        )

    return await _form_action(request, session, principal, rota_id, fields, action)


@router.post("/gardes/{rota_id}/creneaux/{shift_id}/remplacement")
async def replace_shift_page(
    request: Request, session: SessionDep, principal: PrincipalDep, rota_id: uuid.UUID, shift_id: uuid.UUID
):
    async def action(values, _submitted):
        await service.replace_shift(session, principal, shift_id, parse_input(ReplacementCreate, values))

    return await _form_action(request, session, principal, rota_id, ["to_professional_id", "reason"], action)


@router.get("/calendrier/gardes/{token}.ics")
async def calendar_feed(session: SessionDep, token: str):
    """Calendar apps subscribe with this secret address (they cannot log in)."""
    professional_id = await service.professional_for_feed(session, token[:100])
    body = await service.shifts_ics(session, professional_id)
    return Response(
        body, media_type="text/calendar; charset=utf-8", headers={"Cache-Control": "private, no-store"}
    )


__all__ = ["router", "RotaScope"]
