"""The identity-vigilance pages: the queue of the sending organisation, the reconciliation form (candidates by the
header's traits) and its refusals; three actors."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from telesante.imaging import service
from telesante.imaging.models import ImagingStudy, PatientMatch
from telesante.imaging.phantom import head_ct
from tests.factories import make_patient, token_for


async def pending_study(session, region, store):
    organisation = next(iter(region.requester.principal.clinical_organisation_ids))
    for data in head_ct(2, rows=64, patient_id="INCONNU-7"):
        result = await service.ingest_instance(
            session, store, data, organisation_id=organisation, received_from="dicom:CT_FOUGERES"
        )
    return result.study


async def test_queue_and_reconciliation(session, region, store, client):
    yann = await make_patient(
        session,
        region.requester,
        birth_family_name="Le Goff",
        birth_given_names="Yann",
        birth_date=date(1950, 5, 4),
        sex="M",
    )
    yann_id = yann.id  # captured: a refused request rolls back and expires what the test holds
    study = await pending_study(session, region, store)
    study_id = study.id
    treating = await token_for(session, region.requester)
    queue = await client.get("/imagerie/rapprochement", headers=treating)
    assert queue.status_code == 200 and "INCONNU-7" in queue.text and "LE GOFF YANN" in queue.text
    form = await client.get(f"/imagerie/rapprochement/{study_id}", headers=treating)
    assert form.status_code == 200 and str(yann_id) in form.text  # found by the header's name and birth date
    missing_reason = await client.post(
        f"/imagerie/rapprochement/{study_id}",
        data={"patient_id": str(yann_id), "reason": ""},
        headers=treating,
    )
    assert missing_reason.status_code == 422 and "vérifiée" in missing_reason.text
    for who in (region.colleague, region.outsider):
        headers = await token_for(session, who)
        assert "INCONNU-7" not in (await client.get("/imagerie/rapprochement", headers=headers)).text
        assert (await client.get(f"/imagerie/rapprochement/{study_id}", headers=headers)).status_code == 404
        refused = await client.post(
            f"/imagerie/rapprochement/{study_id}",
            data={"patient_id": str(yann_id), "reason": "vu"},
            headers=headers,
        )
        assert refused.status_code == 404
    done = await client.post(
        f"/imagerie/rapprochement/{study_id}",
        data={"patient_id": str(yann_id), "reason": "Carte d'identité vérifiée au scanner"},
        headers=treating,
        follow_redirects=False,
    )
    assert done.status_code == 303
    matched = (await session.execute(sa.select(ImagingStudy).where(ImagingStudy.id == study_id))).scalar_one()
    assert (matched.patient_id, matched.patient_match) == (yann_id, PatientMatch.MANUAL)
    assert "INCONNU-7" not in (await client.get("/imagerie/rapprochement", headers=treating)).text


async def test_administrators_declare_and_suspend_their_senders(session, region, client):
    from telesante.directory.models import Role
    from telesante.imaging.models import DicomPeer
    from tests.factories import make_actor, make_organisation

    chu = next(iter(region.admin.principal.admin_organisation_ids()))
    other_admin = await make_actor(session, await make_organisation(session, "CH de Redon"), Role.ORG_ADMIN)
    admin = await token_for(session, region.admin)
    added = await client.post(
        "/imagerie/emetteurs",
        data={"organisation_id": str(chu), "ae_title": "PACS_CHU", "description": "PACS"},
        headers=admin,
        follow_redirects=False,
    )
    assert added.status_code == 303
    page = await client.get("/imagerie/emetteurs", headers=admin)
    assert "PACS_CHU" in page.text and "Actif" in page.text
    again = await client.post(
        "/imagerie/emetteurs", data={"organisation_id": str(chu), "ae_title": "PACS_CHU"}, headers=admin
    )
    assert again.status_code == 409 and "déjà déclaré" in again.text
    bad = await client.post(
        "/imagerie/emetteurs", data={"organisation_id": str(chu), "ae_title": "A\\B"}, headers=admin
    )
    assert bad.status_code == 422 and "16 caractères" in bad.text
    peer_id = (
        await session.execute(sa.select(DicomPeer.id).where(DicomPeer.ae_title == "PACS_CHU"))
    ).scalar_one()
    other = await token_for(session, other_admin)
    assert "PACS_CHU" not in (await client.get("/imagerie/emetteurs", headers=other)).text
    assert (await client.post(f"/imagerie/emetteurs/{peer_id}/suspendre", headers=other)).status_code == 404
    refused = await client.post(
        "/imagerie/emetteurs", data={"organisation_id": str(chu), "ae_title": "INTRUS"}, headers=other
    )
    assert refused.status_code == 403
    clinician = await token_for(session, region.requester)
    assert (await client.get("/imagerie/emetteurs", headers=clinician)).status_code == 403
    suspended = await client.post(
        f"/imagerie/emetteurs/{peer_id}/suspendre", headers=admin, follow_redirects=False
    )
    assert suspended.status_code == 303
    assert (
        await session.execute(sa.select(DicomPeer.active).where(DicomPeer.id == peer_id))
    ).scalar_one() is False
