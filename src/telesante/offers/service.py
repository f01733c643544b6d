"""Offers: what an organisation's service answers at a distance, how requests reach an expert, in what delay."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.directory.models import Role
from telesante.directory.repository import (
    MembershipRepository,
    OrganisationRepository,
    ServiceRepository,
)
from telesante.kit.errors import Forbidden, InvalidInput, NotFound
from telesante.offers import forms
from telesante.offers.models import ActType, Offer, Routing
from telesante.offers.repository import OfferRepository
from telesante.offers.schemas import OfferCreate, OfferUpdate

DEFAULT_URGENT_ACK_MINUTES = 5


async def _check_offer_parts(session: AsyncSession, data: OfferCreate) -> None:
    if await OrganisationRepository(session).get(data.organisation_id) is None:
        raise InvalidInput("Établissement inconnu.", field="organisation_id")
    if data.service_id is not None:
        service = await ServiceRepository(session).get(data.service_id)
        if service is None or service.organisation_id != data.organisation_id:
            raise InvalidInput("Ce service n'appartient pas à l'établissement.", field="service_id")
    if data.form_code not in forms.form_codes():
        raise InvalidInput(
            f"Formulaire inconnu « {data.form_code} » (disponibles : {', '.join(sorted(forms.form_codes()))}).",
            field="form_code",
        )
    if data.routing == Routing.NAMED_EXPERT:
        assert data.expert_professional_id is not None  # schema rule
        if not await MembershipRepository(session).holds_role(
            data.expert_professional_id, data.organisation_id, Role.EXPERT
        ):
            raise InvalidInput(
                "L'expert nommé doit être « expert requis » dans cet établissement.",
                field="expert_professional_id",
            )
    if data.rota_id is not None:
        from telesante.oncall.repository import RotaRepository

        if await RotaRepository(session).get(data.rota_id) is None:
            raise InvalidInput("Liste de garde inconnue.", field="rota_id")
    organisations = OrganisationRepository(session)
    for organisation_id in data.requester_organisation_ids:
        if await organisations.get(organisation_id) is None:
            raise InvalidInput("Établissement requérant inconnu.", field="requester_organisation_ids")


def _require_admin(principal: Principal, organisation_id: uuid.UUID) -> None:
    if not principal.can_administer(organisation_id):
        raise Forbidden("Seul un administrateur de l'établissement peut publier ou modifier ses offres.")


async def create_offer(session: AsyncSession, principal: Principal, data: OfferCreate) -> Offer:
    _require_admin(principal, data.organisation_id)
    await _check_offer_parts(session, data)
    values = data.model_dump(exclude={"requester_organisation_ids"})
    if data.routing == Routing.ON_CALL and data.urgent and data.ack_minutes is None:
        values["ack_minutes"] = DEFAULT_URGENT_ACK_MINUTES
    offer = await OfferRepository(session).add(Offer(**values))
    if not data.open_to_region:
        await OfferRepository(session).set_requesters(offer.id, data.requester_organisation_ids)
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="Offer",
        object_id=offer.id,
        details={"title": offer.title, "routing": offer.routing.value},
    )
    return offer


async def update_offer(
    session: AsyncSession, principal: Principal, offer_id: uuid.UUID, data: OfferUpdate
) -> Offer:
    offer = await get_offer(session, offer_id)
    _require_admin(principal, offer.organisation_id)
    changes = data.model_dump(exclude_unset=True)
    for key, value in changes.items():
        setattr(offer, key, value)
    await session.flush()
    await record_access(
        session, principal, action=Action.UPDATE, object_type="Offer", object_id=offer.id, details=changes
    )
    return offer


async def get_offer(session: AsyncSession, offer_id: uuid.UUID) -> Offer:
    offer = await OfferRepository(session).get(offer_id)
    if offer is None:
        raise NotFound("Offre inconnue.")
    return offer


async def list_requestable_offers(
    session: AsyncSession, principal: Principal, act_type: ActType | None = None, specialty: str = ""
) -> list[Offer]:
    """The offers this clinician may request (open to the region or to one of their organisations)."""
    organisations = principal.clinical_organisation_ids
    if not organisations:
        return []
    return await OfferRepository(session).list_requestable(
        organisations, act_type=act_type, specialty=specialty
    )


async def list_worklist_offers(session: AsyncSession, principal: Principal) -> list[Offer]:
    """The offers a worklist can be filtered by: those the user may request and those their organisations answer."""
    answering = {g.organisation_id for g in principal.grants if g.role == Role.EXPERT and g.organisation_id}
    found = {o.id: o for o in await list_requestable_offers(session, principal)}
    for organisation_id in sorted(answering):
        found.update({o.id: o for o in await list_organisation_offers(session, organisation_id)})
    return sorted(found.values(), key=lambda o: o.title.lower())


async def list_organisation_offers(session: AsyncSession, organisation_id: uuid.UUID) -> list[Offer]:
    return await OfferRepository(session).list_for_organisation(organisation_id)


async def may_request(session: AsyncSession, offer: Offer, organisation_id: uuid.UUID) -> bool:
    return offer.active and await OfferRepository(session).may_request(offer.id, organisation_id)
