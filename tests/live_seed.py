"""Seed a live test server's database through the real services; prints one JSON object.

Run as ``python -m tests.live_seed`` with TELESANTE_DATA_DIR set (used by tests/live.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from telesante.config import Settings
from telesante.consents import service as consent_service
from telesante.consents.models import ConsentScopeType
from telesante.consents.schemas import ConsentCreate
from telesante.db import Database
from telesante.directory.models import OrganisationType, Role
from telesante.imaging import service as imaging_service
from telesante.kit import clock
from telesante.offers import service as offer_service
from telesante.offers.models import ActType, Routing
from telesante.offers.schemas import OfferCreate
from telesante.oncall import service as oncall_service
from telesante.oncall.schemas import RotaCreate, ShiftCreate
from tests.factories import PASSWORD, make_actor, make_organisation, make_patient, token_for


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
        }
        await session.commit()
    await database.dispose()
    print(json.dumps(info))


if __name__ == "__main__":
    asyncio.run(main())
