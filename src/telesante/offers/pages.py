"""Offer pages: what a clinician may request, and for an organisation's administrator, its offers and the form
to publish a new one."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request

from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.auth.principal import Principal
from telesante.directory.models import Role
from telesante.directory.repository import OrganisationRepository, ProfessionalRepository
from telesante.kit.errors import DomainError, Forbidden
from telesante.kit.schemas import parse_input
from telesante.offers import forms, service
from telesante.offers.models import ACT_TYPE_LABELS, ROUTING_LABELS, ActType, Routing
from telesante.offers.schemas import OfferCreate
from telesante.web.forms import form_values, labelled_message
from telesante.web.render import form_error, redirect, render

router = APIRouter(include_in_schema=False)

FIELD_LABELS = {
    "organisation_id": "Établissement",
    "service_id": "Service",
    "title": "Intitulé",
    "description": "Description",
    "act_type": "Acte",
    "specialty": "Spécialité",
    "form_code": "Formulaire",
    "routing": "Orientation",
    "expert_professional_id": "Expert nommé",
    "rota_id": "Liste de garde",
    "response_minutes": "Délai de réponse (minutes)",
    "ack_minutes": "Délai d'acquittement de l'astreinte (minutes)",
    "requester_organisation_ids": "Établissements autorisés",
}
LABELS = {"ACT_TYPE_LABELS": ACT_TYPE_LABELS, "ROUTING_LABELS": ROUTING_LABELS}


async def _choices(session, principal: Principal, organisation_id: uuid.UUID) -> dict[str, Any]:
    organisation = await OrganisationRepository(session).get_detail(organisation_id)
    members = await ProfessionalRepository(session).members_of(organisation_id)
    experts = sorted(
        {(p.id, p.display_name) for m, p in members if m.role == Role.EXPERT}, key=lambda item: item[1]
    )
    rotas: list[tuple[uuid.UUID, str]] = []
    try:
        from telesante.oncall.repository import RotaRepository

        rotas = [(r.id, r.name) for r in await RotaRepository(session).list_for_organisation(organisation_id)]
    except (ImportError, AttributeError):  # pragma: no cover - the on-call domain ships with this page
        rotas = []
    return {
        "organisation": organisation,
        "services": [(s.id, s.name) for s in (organisation.services if organisation else [])],
        "experts": experts,
        "rotas": rotas,
        "forms": [
            (f.code, f.title)
            for f in sorted(forms.all_forms(), key=lambda f: f.title)
            if f.version == forms.latest_form(f.code).version
        ],
        "act_types": list(ACT_TYPE_LABELS.items()),
        "routings": list(ROUTING_LABELS.items()),
    }


@router.get("/offres")
async def offers_page(request: Request, session: SessionDep, principal: PrincipalDep):
    requestable = await service.list_requestable_offers(session, principal)
    administered: list[tuple[Any, list]] = []
    organisations = OrganisationRepository(session)
    for organisation_id in sorted(principal.admin_organisation_ids()):
        organisation = await organisations.get(organisation_id)
        administered.append((organisation, await service.list_organisation_offers(session, organisation_id)))
    return render(
        request, "offers/list.html", {"requestable": requestable, "administered": administered, **LABELS}
    )


def _require_admin(principal: Principal, organisation_id: uuid.UUID) -> None:
    if not principal.can_administer(organisation_id):
        raise Forbidden("Seul un administrateur de l'établissement peut publier ses offres.")


@router.get("/offres/nouvelle")
async def new_offer_page(
    request: Request, session: SessionDep, principal: PrincipalDep, organisation_id: uuid.UUID
):
    _require_admin(principal, organisation_id)
    context = {
        "values": {"response_minutes": "60"},
        **await _choices(session, principal, organisation_id),
        **LABELS,
    }
    return render(request, "offers/new.html", context)


@router.post("/offres/nouvelle")
async def create_offer_page(
    request: Request, session: SessionDep, principal: PrincipalDep, organisation_id: uuid.UUID
):
    _require_admin(principal, organisation_id)
    submitted = await request.form()
    values = form_values(
        submitted, [n for n in OfferCreate.model_fields if n not in ("urgent", "open_to_region")]
    )
    data: dict[str, Any] = {
        **values,
        "organisation_id": str(organisation_id),
        "urgent": submitted.get("urgent") == "oui",
        "open_to_region": True,
    }
    context = {"values": values, **await _choices(session, principal, organisation_id), **LABELS}
    try:
        await service.create_offer(session, principal, parse_input(OfferCreate, data))
    except DomainError as exc:
        return form_error(request, "offers/new.html", context, labelled_message(exc, FIELD_LABELS), exc.field)
    return redirect("/offres")


__all__ = ["router", "ActType", "Routing"]
