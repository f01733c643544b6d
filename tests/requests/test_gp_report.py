"""The signed compte rendu reaches the patient's médecin traitant (CSP R.6316-4): the declared GP reads the PDF —
and only the PDF, only once signed — while a clinician who is not the GP, and an outsider, get 404."""

from __future__ import annotations

import json

import sqlalchemy as sa

from telesante.audit.models import AuditEvent
from telesante.directory.models import Role
from telesante.requests import service
from telesante.requests.schemas import RequestAnswer
from tests.factories import make_actor, make_organisation, make_patient, token_for
from tests.requests.test_service import report, sent_request


async def test_the_gp_reads_the_signed_report_and_nothing_else(session, client, app, region, offer, settings):
    store = app.state.blob_store
    practice = await make_organisation(session, "Maison de santé de Liffré")
    gp = await make_actor(session, practice, Role.REQUESTER)
    patient = await make_patient(
        session,
        region.requester,
        birth_family_name="Le Goff",
        birth_given_names="Yann",
        gp_professional_id=gp.professional.id,
    )
    request = await sent_request(session, region, offer, patient, store, settings)
    rid, gp_account_id = (
        request.id,
        gp.account.id,
    )  # refused calls roll back and expire the ORM objects held here
    request_id = str(rid)
    headers = {
        who: await token_for(session, actor)
        for who, actor in (("gp", gp), ("colleague", region.colleague), ("outsider", region.outsider))
    }
    pdf_path = f"/demandes/{request_id}/compte-rendu.pdf"

    assert (await client.get(pdf_path, headers=headers["gp"])).status_code == 404  # nothing signed yet

    expert = region.expert.principal
    await service.accept_request(session, expert, rid)
    await service.answer_request(
        session,
        expert,
        request.id,
        RequestAnswer(answers={"decision": "surveillance_24h"}, conclusion="Surveillance"),
    )
    signed = await service.sign_report(session, expert, settings, store, rid, report())
    content_hash = signed.content_hash

    response = await client.get(pdf_path, headers=headers["gp"])
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert response.headers["cache-control"] == "no-store"
    # The GP reads the report, not the request: its page, thread and documents stay with the parties.
    for path in (
        f"/demandes/{request_id}",
        f"/api/requests/{request_id}",
        f"/fhir/ServiceRequest/{request_id}",
    ):
        assert (await client.get(path, headers=headers["gp"])).status_code == 404, path
    for who in ("colleague", "outsider"):
        assert (await client.get(pdf_path, headers=headers[who])).status_code == 404, who

    audited = await session.execute(
        sa.select(AuditEvent.details).where(
            AuditEvent.object_type == "TeleRequest", AuditEvent.account_id == gp_account_id
        )
    )
    details = [json.loads(d) for d in audited.scalars() if d]
    assert {"report_pdf": content_hash, "role": "médecin traitant"} in [
        {k: v for k, v in d.items() if k in ("report_pdf", "role")} for d in details
    ]
