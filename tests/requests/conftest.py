"""A small region for request tests: a general hospital that asks, a CHU that answers, a third hospital."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from telesante.consents import service as consent_service
from telesante.consents.models import ConsentDecision, ConsentScopeType
from telesante.consents.schemas import ConsentCreate
from telesante.directory.models import OrganisationType, Role
from telesante.offers import service as offer_service
from telesante.offers.models import ActType, Routing
from telesante.offers.schemas import OfferCreate
from telesante.storage.blobs import FilesystemBlobStore
from tests.factories import Actor, make_actor, make_organisation, make_patient


@dataclass
class Region:
    requester: Actor  # emergency doctor at the general hospital (the treating professional)
    expert: Actor  # neurosurgeon at the CHU
    second_expert: Actor
    colleague: Actor  # a clinician of a third hospital
    outsider: Actor  # an evaluator, no clinical role
    admin: Actor  # the CHU's administrator


async def give_consent(session, actor: Actor, patient_id, act: str = "teleexpertise"):
    text = (await consent_service.list_information_texts(session, ConsentScopeType.ACT, act))[0]
    return await consent_service.record_consent(
        session,
        actor.principal,
        patient_id,
        ConsentCreate(
            scope_type=ConsentScopeType.ACT,
            scope_code=act,
            decision=ConsentDecision.GIVEN,
            information_text_id=text.id,
        ),
    )


@pytest.fixture
async def region(session) -> Region:
    ch = await make_organisation(session, "CH de Fougères")
    chu = await make_organisation(session, "CHU de Rennes", type=OrganisationType.CHU)
    third = await make_organisation(session, "CH de Vitré")
    return Region(
        requester=await make_actor(session, ch, Role.REQUESTER),
        expert=await make_actor(session, chu, Role.EXPERT),
        second_expert=await make_actor(session, chu, Role.EXPERT),
        colleague=await make_actor(session, third, Role.EXPERT),
        outsider=await make_actor(session, None, Role.EVALUATOR),
        admin=await make_actor(session, chu, Role.ORG_ADMIN),
    )


async def make_offer(session, region: Region, **overrides):
    """An offer of the CHU (its administrator publishes it): the head trauma opinion unless told otherwise."""
    data = {
        "organisation_id": next(iter(region.admin.principal.admin_organisation_ids())),
        "title": "Avis neurochirurgical 24/7",
        "act_type": ActType.TELEEXPERTISE,
        "specialty": "Neurochirurgie",
        "form_code": "trauma_cranien",
        "routing": Routing.POOL,
        "response_minutes": 30,
        "urgent": True,
        **overrides,
    }
    return await offer_service.create_offer(session, region.admin.principal, OfferCreate(**data))


@pytest.fixture
async def offer(session, region):
    return await make_offer(session, region)


@pytest.fixture
async def patient(session, region):
    return await make_patient(
        session, region.requester, birth_family_name="Le Goff", birth_given_names="Yann"
    )


@pytest.fixture
def store(tmp_path):
    return FilesystemBlobStore(tmp_path / "blobs")
