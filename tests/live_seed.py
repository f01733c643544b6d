"""Seed a live test server's database through the real services; prints one JSON object.

Run as ``python -m tests.live_seed`` with TELESANTE_DATA_DIR set (used by tests/live.py)."""

from __future__ import annotations

import asyncio
import json

from telesante.config import Settings
from telesante.consents import service as consent_service
from telesante.consents.models import ConsentScopeType
from telesante.consents.schemas import ConsentCreate
from telesante.db import Database
from telesante.directory.models import Role
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
        }
        await session.commit()
    await database.dispose()
    print(json.dumps(info))


if __name__ == "__main__":
    asyncio.run(main())
