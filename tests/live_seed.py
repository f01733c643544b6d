"""Seed a live test server's database through the real services; prints one JSON object.

Run as ``python -m tests.live_seed`` with TELESANTE_DATA_DIR set (used by tests/live.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from telesante.auth import service as auth_service
from telesante.config import Settings
from telesante.consents import service as consent_service
from telesante.consents.models import ConsentScopeType
from telesante.consents.schemas import ConsentCreate
from telesante.db import Database
from telesante.directory import service as directory_service
from telesante.directory.models import OrganisationType, Profession, Role
from telesante.directory.schemas import MembershipCreate
from telesante.imaging import service as imaging_service
from telesante.kit import clock
from telesante.monitoring import service as monitoring_service
from telesante.monitoring.schemas import ProgrammeCreate
from telesante.offers import service as offer_service
from telesante.offers.models import ActType, Routing
from telesante.offers.schemas import OfferCreate
from telesante.oncall import service as oncall_service
from telesante.oncall.schemas import RotaCreate, ShiftCreate
from telesante.scheduling import service as scheduling_service
from telesante.scheduling.schemas import SiteCreate
from tests.factories import (
    PASSWORD,
    make_actor,
    make_organisation,
    make_patient,
    make_teleconsultation_agenda,
    token_for,
)


async def main() -> None:
    database = Database(Settings())
    async with database.sessionmaker() as session:
        here = await make_organisation(session, "CH de Lannion")
        elsewhere = await make_organisation(session, "CH de Paimpol")
        clinician = await make_actor(session, here, Role.REQUESTER)
        colleague = await make_actor(session, elsewhere, Role.EXPERT)
        patient = await make_patient(
            session, clinician, birth_family_name="Le Goff", birth_given_names="Maïwenn"
        )
        notice = (
            await consent_service.list_information_texts(session, ConsentScopeType.ACT, "teleexpertise")
        )[0]
        consent = await consent_service.record_consent(
            session,
            clinician.principal,
            patient.id,
            ConsentCreate(
                scope_type="act", scope_code="teleexpertise", decision="given", information_text_id=notice.id
            ),
        )
        # A CHU answering head-trauma requests through its neurosurgery on-call rota (for the browser story).
        chu = await make_organisation(session, "CHU de Brest", type=OrganisationType.CHU)
        chu_admin = await make_actor(session, chu, Role.ORG_ADMIN)
        neurosurgeon = await make_actor(session, chu, Role.EXPERT)
        backup = await make_actor(session, chu, Role.EXPERT)
        rota = await oncall_service.create_rota(
            session,
            chu_admin.principal,
            RotaCreate(
                name="Astreinte de neurochirurgie",
                organisation_id=chu.id,
                head_professional_id=neurosurgeon.professional.id,
                ack_minutes=5,
            ),
        )
        now = clock.now().replace(second=0, microsecond=0)
        for who, role in ((neurosurgeon, "primary"), (backup, "backup")):
            await oncall_service.add_shift(
                session,
                chu_admin.principal,
                rota.id,
                ShiftCreate(
                    professional_id=who.professional.id,
                    role=role,
                    starts_at=now - timedelta(hours=1),
                    ends_at=now + timedelta(hours=23),
                ),
            )
        offer = await offer_service.create_offer(
            session,
            chu_admin.principal,
            OfferCreate(
                organisation_id=chu.id,
                title="Avis neurochirurgical 24/7",
                act_type=ActType.TELEEXPERTISE,
                form_code="trauma_cranien",
                routing=Routing.ON_CALL,
                rota_id=rota.id,
                response_minutes=30,
                urgent=True,
                ack_minutes=1,  # the shortest delay, so that the escalation test waits one minute
            ),
        )
        # The CT scanner of the general hospital, a known DICOM peer (for the imaging browser story).
        here_admin = await make_actor(session, here, Role.ORG_ADMIN)
        await imaging_service.register_peer(session, here_admin.principal, here.id, "CT_LANNION", "Scanner")
        video = await _teleconsultation(session)
        monitoring = await _monitoring(session)
        stroke = await _stroke(session, chu, chu_admin, now)
        token = (await token_for(session, clinician))["Authorization"].split(" ", 1)[1]
        info = {
            "email": clinician.email,
            "password": PASSWORD,
            "token": token,
            "patient_id": str(patient.id),
            "consent_id": str(consent.id),
            "organisation_id": str(here.id),
            "colleague_email": colleague.email,
            "professional_id": str(clinician.professional.id),
            "neurosurgeon_email": neurosurgeon.email,
            "neurosurgeon_name": neurosurgeon.principal.display_name,
            "offer_id": str(offer.id),
            "backup_email": backup.email,
            **video,
            **stroke,
            **monitoring,
        }
        await session.commit()
    await database.dispose()
    print(json.dumps(info))


async def _stroke(session, chu, chu_admin, now) -> dict[str, str]:
    """The regional TéléAVC rota at the CHU (a neurologist on duty, a backup), its alert offer, and the
    thrombectomy centre with one of its interventional neuroradiologists."""
    neurologist = await make_actor(session, chu, Role.EXPERT)
    backup = await make_actor(session, chu, Role.EXPERT)
    rota = await oncall_service.create_rota(
        session,
        chu_admin.principal,
        RotaCreate(
            name="Astreinte TéléAVC",
            organisation_id=chu.id,
            head_professional_id=neurologist.professional.id,
            ack_minutes=3,
        ),
    )
    for who, role in ((neurologist, "primary"), (backup, "backup")):
        await oncall_service.add_shift(
            session,
            chu_admin.principal,
            rota.id,
            ShiftCreate(
                professional_id=who.professional.id,
                role=role,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=23),
            ),
        )
    offer = await offer_service.create_offer(
        session,
        chu_admin.principal,
        OfferCreate(
            organisation_id=chu.id,
            title="TéléAVC — alerte thrombolyse 24/7",
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
    centre = await make_organisation(
        session, "CHU de Rennes — neuroradiologie interventionnelle", type=OrganisationType.CHU
    )
    neuroradiologist = await make_actor(session, centre, Role.EXPERT)
    return {
        "neurologist_email": neurologist.email,
        "neurologist_name": neurologist.principal.display_name,
        "stroke_offer": offer.title,
        "thrombectomy_centre": centre.name,
        "neuroradiologist_email": neuroradiologist.email,
    }


async def _teleconsultation(session) -> dict[str, str]:
    """An EHPAD (its nurse, its care room, a resident) and a CHU geriatrician with slots every half hour."""
    ehpad = await make_organisation(session, "EHPAD Les Hortensias", type=OrganisationType.EHPAD)
    chu = await make_organisation(session, "CHU de Rennes", type=OrganisationType.CHU)
    nurse = await make_actor(session, ehpad, Role.ASSISTANT, profession=Profession.INFIRMIER)
    geriatrician = await make_actor(session, chu, Role.EXPERT)
    admin = await make_actor(session, chu, Role.ORG_ADMIN)
    ehpad_admin = await make_actor(session, ehpad, Role.ORG_ADMIN)
    offer = await make_teleconsultation_agenda(
        session, chu.id, admin, geriatrician, "Téléconsultation de gériatrie"
    )
    await scheduling_service.create_site(
        session,
        ehpad_admin.principal,
        SiteCreate(organisation_id=ehpad.id, name="Salle de soins", kind="room", equipment=["camera"]),
    )
    resident = await make_patient(session, nurse, birth_family_name="Kerjean", birth_given_names="Yvonne")
    return {
        "nurse_email": nurse.email,
        "nurse_name": nurse.principal.display_name,
        "geriatrician_email": geriatrician.email,
        "geriatrician_name": geriatrician.principal.display_name,
        "resident_id": str(resident.id),
        "teleconsultation_offer": offer.title,
    }


async def _monitoring(session) -> dict[str, str]:
    """A heart-failure telemonitoring team at the CHU (open every day around the clock, so the story's alert falls
    within its hours), its cardiologist (operator, with teleconsultation slots), a general hospital's cardiologist
    who enrols her patient."""
    team = await make_organisation(
        session, "CHU de Lille — télésurveillance cardiaque", type=OrganisationType.CHU
    )
    ch = await make_organisation(session, "CH d'Arras")
    admin = await make_actor(session, team, Role.ORG_ADMIN)
    operator = await make_actor(session, team, Role.MONITORING_OPERATOR)
    await directory_service.add_membership(
        session,
        None,
        MembershipCreate(professional_id=operator.professional.id, organisation_id=team.id, role=Role.EXPERT),
    )
    operator.principal = await auth_service.build_principal(session, operator.account, "session")
    cardiologist = await make_actor(session, ch, Role.REQUESTER)
    await monitoring_service.create_programme(
        session,
        admin.principal,
        ProgrammeCreate(
            organisation_id=team.id,
            code="insuffisance_cardiaque",
            team_name="Équipe de télésurveillance IC",
            team_phone="03 20 44 59 62",
            declaration_reference="ARS HDF TLS-2024-031",
            days=[1, 2, 3, 4, 5, 6, 7],
            opens="00:00",
            closes="23:59",
        ),
    )
    offer = await make_teleconsultation_agenda(
        session, team.id, admin, operator, "Téléconsultation de cardiologie (insuffisance cardiaque)"
    )
    patient = await make_patient(
        session, cardiologist, birth_family_name="Dufour", birth_given_names="Marcel"
    )
    return {
        "monitoring_operator_email": operator.email,
        "monitoring_cardiologist_email": cardiologist.email,
        "monitoring_patient_id": str(patient.id),
        "monitoring_offer": offer.title,
    }


if __name__ == "__main__":
    asyncio.run(main())
