"""A heart-failure telemonitoring network: the CHU's monitoring team (nurse, cardiologist, a device gateway
account) runs the programme; a cardiologist of a general hospital enrols her patient (the treating professional);
a clinician of another hospital (colleague elsewhere) and a regional evaluator (outsider) are not involved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from telesante.consents.models import ConsentDecision
from telesante.directory.models import OrganisationType, Profession, Role
from telesante.monitoring import service
from telesante.monitoring.models import Enrolment, MonitoringProgramme
from telesante.monitoring.schemas import DeviceIn, EnrolmentCreate, ProgrammeCreate
from tests.factories import Actor, make_actor, make_organisation, make_patient
from tests.helpers import frozen_clock

# Tuesday 1 December 2026, 10:00 in Paris: within the team's declared hours (Monday–Friday 08:00–18:00)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class MonitoringNetwork:
    team_id: object
    nurse: Actor  # the team's nurse (first-line filter)
    doctor: Actor  # the team's cardiologist (interpretation)
    gateway: Actor  # the device vendor's gateway, an account of the team
    admin: Actor
    cardiologist: Actor  # enrols her patient from the general hospital (treating professional)
    colleague: Actor  # another hospital, not involved
    outsider: Actor  # regional evaluator
    programme: MonitoringProgramme


@pytest.fixture
def frozen():
    """The server's clock, moved by the tests (``frozen.advance(minutes=…)``)."""
    with frozen_clock(T0) as moved:
        yield moved


@pytest.fixture
async def network(session, frozen) -> MonitoringNetwork:
    return await build_network(session)


async def build_network(session) -> MonitoringNetwork:
    """The network in this session (the ``network`` fixture's, or a test's own database)."""
    chu = await make_organisation(
        session, "CHU de Lille — télésurveillance cardiaque", type=OrganisationType.CHU
    )
    ch = await make_organisation(session, "CH d'Arras")
    other = await make_organisation(session, "CH de Lens")
    admin = await make_actor(session, chu, Role.ORG_ADMIN)
    nurse = await make_actor(session, chu, Role.MONITORING_OPERATOR, profession=Profession.INFIRMIER)
    doctor = await make_actor(session, chu, Role.MONITORING_OPERATOR)
    gateway = await make_actor(session, chu, Role.MONITORING_OPERATOR, profession=Profession.ADMINISTRATIF)
    cardiologist = await make_actor(session, ch, Role.REQUESTER)
    colleague = await make_actor(session, other, Role.REQUESTER)
    outsider = await make_actor(session, None, Role.EVALUATOR)
    programme = await service.create_programme(
        session,
        admin.principal,
        ProgrammeCreate(
            organisation_id=chu.id,
            code="insuffisance_cardiaque",
            team_name="Équipe de télésurveillance IC",
            team_phone="03 20 00 00 00",
            declaration_reference="ARS HDF TLS-2024-031",
        ),
    )
    return MonitoringNetwork(
        chu.id, nurse, doctor, gateway, admin, cardiologist, colleague, outsider, programme
    )


@pytest.fixture
async def patient(session, network):
    return await make_patient(
        session, network.cardiologist, birth_family_name="Dufour", birth_given_names="Marcel"
    )


async def enrol(session, network, patient, **overrides) -> Enrolment:
    data = {
        "programme_id": network.programme.id,
        "indication": "Insuffisance cardiaque à FEVG réduite, NYHA III, hospitalisation récente",
        "prescriber_name": "Dr Claire Martin",
        "decision": ConsentDecision.GIVEN,
        "devices": [DeviceIn(serial="SCALE-0001", kind="Balance connectée")],
    }
    data.update(overrides)
    return await service.enrol_patient(
        session, network.cardiologist.principal, patient.id, EnrolmentCreate(**data)
    )
