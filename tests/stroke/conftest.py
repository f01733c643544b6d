"""A stroke network for the TéléAVC tests: a general hospital's emergency department without a neurologist, the
CHU's neurovascular rota (primary on duty, backup, head), the CHU as thrombectomy centre, and the three actors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from telesante.directory.models import OrganisationType, Role
from telesante.offers import service as offer_service
from telesante.offers.models import ActType, Offer, Routing
from telesante.offers.schemas import OfferCreate
from telesante.oncall import service as oncall
from telesante.oncall.schemas import RotaCreate, ShiftCreate
from tests.factories import Actor, make_actor, make_organisation, make_patient
from tests.helpers import frozen_clock

# 02:10 Paris time on a winter night (01:10 UTC): the story
T0 = datetime(2026, 12, 2, 1, 10, tzinfo=UTC)


@dataclass
class StrokeNetwork:
    emergency: Actor  # the emergency doctor of the general hospital (treating professional)
    ed_nurse: Actor  # a colleague of the same emergency department
    neurologist: Actor  # on duty tonight in the CHU's rota
    backup: Actor
    head: Actor
    colleague: Actor  # a clinician of another hospital, not involved
    outsider: Actor  # an evaluator, no clinical role
    thrombectomy_centre: object
    chu_id: object
    offer: Offer
    rota_id: object


@pytest.fixture
def frozen():
    """The server's clock, moved by the tests (``frozen.advance(minutes=…)``)."""
    with frozen_clock(T0) as moved:
        yield moved


@pytest.fixture
async def network(session, frozen) -> StrokeNetwork:
    ch = await make_organisation(session, "CH de Guingamp")
    chu = await make_organisation(session, "CHU de Brest", type=OrganisationType.CHU)
    neurocentre = await make_organisation(
        session, "CHU de Rennes — neuroradiologie interventionnelle", type=OrganisationType.CHU
    )
    third = await make_organisation(session, "CH de Morlaix")
    admin = await make_actor(session, chu, Role.ORG_ADMIN)
    head = await make_actor(session, chu, Role.EXPERT)
    neurologist = await make_actor(session, chu, Role.EXPERT)
    backup = await make_actor(session, chu, Role.EXPERT)
    rota = await oncall.create_rota(
        session,
        admin.principal,
        RotaCreate(
            name="Astreinte TéléAVC",
            organisation_id=chu.id,
            head_professional_id=head.professional.id,
            ack_minutes=3,
        ),
    )
    for who, role in ((neurologist, "primary"), (backup, "backup")):
        await oncall.add_shift(
            session,
            admin.principal,
            rota.id,
            ShiftCreate(
                professional_id=who.professional.id,
                role=role,
                starts_at=T0 - timedelta(hours=8),
                ends_at=T0 + timedelta(hours=10),
            ),
        )
    offer = await offer_service.create_offer(
        session,
        admin.principal,
        OfferCreate(
            organisation_id=chu.id,
            title="TéléAVC — thrombolyse 24/7",
            act_type=ActType.TELEEXPERTISE,
            specialty="Neurologie",
            form_code="alerte_avc",
            routing=Routing.ON_CALL,
            rota_id=rota.id,
            response_minutes=15,
            urgent=True,
            ack_minutes=3,
        ),
    )
    return StrokeNetwork(
        emergency=await make_actor(session, ch, Role.REQUESTER),
        ed_nurse=await make_actor(session, ch, Role.REQUESTER),
        neurologist=neurologist,
        backup=backup,
        head=head,
        colleague=await make_actor(session, third, Role.EXPERT),
        outsider=await make_actor(session, None, Role.EVALUATOR),
        thrombectomy_centre=neurocentre,
        chu_id=chu.id,
        offer=offer,
        rota_id=rota.id,
    )


@pytest.fixture
async def patient(session, network):
    return await make_patient(
        session, network.emergency, birth_family_name="Le Bihan", birth_given_names="Anne"
    )
