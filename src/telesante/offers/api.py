from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.offers import forms, service
from telesante.offers.models import ActType
from telesante.offers.schemas import OfferCreate, OfferRead, OfferUpdate

router = APIRouter(tags=["offres"])


@router.get("/offers", response_model=list[OfferRead])
async def list_offers(
    session: SessionDep, principal: PrincipalDep, act_type: ActType | None = None, specialty: str = ""
):
    """Offres que vous pouvez solliciter (ouvertes à la région ou à votre établissement)."""
    return await service.list_requestable_offers(session, principal, act_type, specialty[:100])


@router.post("/offers", response_model=OfferRead, status_code=status.HTTP_201_CREATED)
async def create_offer(session: SessionDep, principal: PrincipalDep, data: OfferCreate):
    """Publier une offre (administrateur de l'établissement)."""
    return await service.create_offer(session, principal, data)


@router.get("/offers/{offer_id}", response_model=OfferRead)
async def get_offer(session: SessionDep, principal: PrincipalDep, offer_id: uuid.UUID):
    return await service.get_offer(session, offer_id)


@router.patch("/offers/{offer_id}", response_model=OfferRead)
async def update_offer(session: SessionDep, principal: PrincipalDep, offer_id: uuid.UUID, data: OfferUpdate):
    return await service.update_offer(session, principal, offer_id, data)


@router.get("/forms", response_model=list[forms.FormDefinition])
async def list_forms(principal: PrincipalDep):
    """Formulaires structurés disponibles (dernière version de chacun)."""
    return [forms.latest_form(code) for code in sorted(forms.form_codes())]


@router.get("/forms/{code}/{version}", response_model=forms.FormDefinition)
async def get_form(principal: PrincipalDep, code: str, version: int):
    return forms.get_form(code, version)
