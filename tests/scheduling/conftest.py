"""A small region for scheduling tests: an EHPAD whose nurse books, a CHU whose geriatrician consults, a third
hospital (the colleague elsewhere) and a regional evaluator (the outsider)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pytest

from telesante.directory.models import OrganisationType, Profession, Role
from telesante.kit import clock
from telesante.offers import service as offer_service
from telesante.offers.models import ActType, Routing
from telesante.offers.schemas import OfferCreate
from telesante.scheduling import service
from telesante.scheduling.models import SiteKind
from telesante.scheduling.schemas import PatternCreate, SiteCreate
from tests.factories import Actor, make_actor, make_organisation, make_patient

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Tuesday 1 December 2026, 09:00 in Paris


@dataclass
class World:
    nurse: Actor  # EHPAD nurse: books for the resident (treating side)
    nurse2: Actor  # her colleague at the same EHPAD
    doctor: Actor  # CHU geriatrician: consults
    admin: Actor  # CHU administrator
    ehpad_admin: Actor
    colleague: Actor  # a doctor of a third hospital
    outsider: Actor  # regional evaluator, no clinical role
    offer_id: object
    site_id: object
    patient_id: object
    ehpad_id: object
    chu_id: object


@pytest.fixture(autouse=True)
def frozen_clock():
    clock.set_clock(lambda: T0)
    yield
    clock.set_clock(None)


@pytest.fixture
async def world(session) -> World:
    return await build_world(session)


async def build_world(session) -> World:
    ehpad = await make_organisation(session, "EHPAD Les Hortensias", type=OrganisationType.EHPAD)
    chu = await make_organisation(session, "CHU de Rennes", type=OrganisationType.CHU)
    third = await make_organisation(session, "CH de Vitré")
    nurse = await make_actor(session, ehpad, Role.ASSISTANT, profession=Profession.INFIRMIER)
    nurse2 = await make_actor(session, ehpad, Role.ASSISTANT, profession=Profession.INFIRMIER)
    doctor = await make_actor(session, chu, Role.EXPERT)
    admin = await make_actor(session, chu, Role.ORG_ADMIN)
    ehpad_admin = await make_actor(session, ehpad, Role.ORG_ADMIN)
    offer = await offer_service.create_offer(
        session,
        admin.principal,
        OfferCreate(
            organisation_id=chu.id,
            title="Téléconsultation de gériatrie",
            act_type=ActType.TELECONSULTATION,
            specialty="Gériatrie",
            form_code="question_generique",
            routing=Routing.POOL,
            response_minutes=60 * 24 * 7,
        ),
    )
    site = await service.create_site(
        session,
        ehpad_admin.principal,
        SiteCreate(
            organisation_id=ehpad.id,
            name="Salle de soins du 1er étage",
            kind=SiteKind.ROOM,
            equipment=["camera", "stethoscope", "oximeter"],
            staff_professional_ids=[nurse.professional.id],
        ),
    )
    patient = await make_patient(session, nurse, birth_family_name="Kerjean", birth_given_names="Yvonne")
    return World(
        nurse=nurse,
        nurse2=nurse2,
        doctor=doctor,
        admin=admin,
        ehpad_admin=ehpad_admin,
        colleague=await make_actor(session, third, Role.EXPERT),
        outsider=await make_actor(session, None, Role.EVALUATOR),
        offer_id=offer.id,
        site_id=site.id,
        patient_id=patient.id,
        ehpad_id=ehpad.id,
        chu_id=chu.id,
    )


def weekday_mornings(world: World, **overrides) -> PatternCreate:
    """Monday to Friday, 09:00–12:00 Paris time, 30-minute slots, December 2026."""
    data = {
        "professional_id": world.doctor.professional.id,
        "offer_id": world.offer_id,
        "weekdays": [1, 2, 3, 4, 5],
        "start_time": time(9, 0),
        "end_time": time(12, 0),
        "slot_minutes": 30,
        "valid_from": date(2026, 12, 1),
        "valid_until": date(2026, 12, 31),
    }
    data.update(overrides)
    return PatternCreate(**data)
