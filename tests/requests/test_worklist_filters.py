"""Worklist filters by patient and by offer, through the page, with the three actors: the filter by patient is a
read of the patient (audited, 404 outside one's care), and the filters survive the live refresh and the pager."""

from __future__ import annotations

import html

import httpx
import pytest
import sqlalchemy as sa

from telesante.audit.models import AuditEvent
from telesante.offers import service as offer_service
from telesante.offers.models import ActType, Routing
from telesante.offers.schemas import OfferCreate
from tests.factories import PASSWORD, make_patient
from tests.helpers import login
from tests.requests.test_service import draft, sent_request


@pytest.fixture
async def browser(app):
    transport = httpx.ASGITransport(app=app, client=("192.0.2.12", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


@pytest.fixture
async def second_offer(session, region):
    return await offer_service.create_offer(
        session,
        region.admin.principal,
        OfferCreate(
            organisation_id=next(iter(region.admin.principal.admin_organisation_ids())),
            title="Avis neurologique",
            act_type=ActType.TELEEXPERTISE,
            specialty="Neurologie",
            form_code="trauma_cranien",
            routing=Routing.POOL,
            response_minutes=60,
        ),
    )


async def test_the_worklist_filters_by_patient_and_by_offer(
    session, browser, region, offer, second_offer, patient, store, settings
):
    other_patient = await make_patient(
        session, region.requester, birth_family_name="Morvan", birth_given_names="Anne"
    )
    first = await sent_request(session, region, offer, patient, store, settings)
    second = await draft(session, region, second_offer, other_patient)
    first_id, second_id = str(first.id), str(second.id)
    patient_id, other_id, offer_id = str(patient.id), str(other_patient.id), str(offer.id)
    await login(browser, region.requester.email, PASSWORD)

    async def listed(**params) -> str:
        response = await browser.get("/demandes", params={"vue": "requerant", "statut": "tout", **params})
        assert response.status_code == 200, response.text
        return response.text

    both = await listed()
    assert first_id in both and second_id in both
    assert 'value="' + offer_id + '"' in both  # the offer select lists the offers
    by_patient = await listed(patient_id=patient_id)
    assert first_id in by_patient and second_id not in by_patient
    assert "LE GOFF" in html.unescape(by_patient) and "retirer ce filtre" in by_patient
    # The live refresh and the pager repeat the filter.
    assert f"patient_id={patient_id}" in by_patient.split('hx-get="/demandes?')[1].split('"')[0]
    assert first_id not in await listed(patient_id=other_id) and second_id in await listed(
        patient_id=other_id
    )
    by_offer = await listed(offre=offer_id)
    assert first_id in by_offer and second_id not in by_offer
    assert "offre=" + offer_id in by_offer.split('hx-get="/demandes?')[1].split('"')[0]
    assert first_id not in await listed(offre=offer_id, patient_id=other_id)
    fragment = await browser.get(
        "/demandes",
        params={"vue": "requerant", "statut": "tout", "offre": offer_id},
        headers={"HX-Request": "true", "HX-Target": "liste"},
    )
    assert first_id in fragment.text and second_id not in fragment.text and "<html" not in fragment.text

    # Filtering by patient reads the patient: audited, one more read row per page shown.
    async def patient_reads() -> int:
        query = sa.select(sa.func.count()).where(
            AuditEvent.patient_id == patient.id, AuditEvent.action == "read"
        )
        return (await session.execute(query)).scalar_one()

    before = await patient_reads()
    await listed(patient_id=patient_id)
    assert await patient_reads() == before + 1

    # Bad input: a clear 4xx, never a 500.
    assert (await browser.get("/demandes", params={"patient_id": "pas-un-uuid"})).status_code == 422
    assert (await browser.get("/demandes", params={"offre": "x"})).status_code == 422


@pytest.mark.parametrize("who", ["colleague", "outsider"])
async def test_a_patient_outside_ones_care_cannot_be_used_as_a_filter(
    session, browser, region, offer, patient, store, settings, who
):
    await sent_request(session, region, offer, patient, store, settings)
    patient_id = str(patient.id)
    await login(browser, getattr(region, who).email, PASSWORD)
    response = await browser.get("/demandes", params={"vue": "expert", "patient_id": patient_id})
    assert response.status_code == 404  # as for the record itself: its existence is not revealed
    assert "LE GOFF" not in html.unescape(response.text)


async def test_the_patient_record_links_to_its_requests(session, browser, region, patient):
    patient_id = str(patient.id)
    await login(browser, region.requester.email, PASSWORD)
    record = await browser.get(f"/patients/{patient_id}")
    assert f"/demandes?vue=requerant&amp;statut=tout&amp;patient_id={patient_id}" in record.text
