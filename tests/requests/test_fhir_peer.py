"""A real FHIR client (fhirpy) as the requester's software: it finds the offer, creates and sends a head-trauma
request, then follows its status by search (Confluences' "GET" method) until the signed report can be fetched."""

from __future__ import annotations

import base64

import pytest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from telesante.requests import service
from telesante.requests.schemas import RequestAnswer
from tests.factories import token_for
from tests.fhir.test_fhirpy import fhir_url  # noqa: F401 - the served app, as a fixture
from tests.requests.conftest import give_consent
from tests.requests.test_fhir import posted_service_request
from tests.requests.test_service import a_pdf, report


@pytest.fixture
def app_store(app):
    return app.state.blob_store


async def test_fhirpy_creates_a_request_and_follows_it_to_the_signed_report(
    session,
    fhir_url,  # noqa: F811 - the fixture imported above
    region,
    offer,
    patient,
    settings,
    app_store,  # noqa: F811
):
    await give_consent(session, region.requester, patient.id)
    requester = AsyncFHIRClient(
        fhir_url, authorization=(await token_for(session, region.requester))["Authorization"]
    )
    offer_id, patient_id = str(offer.id), str(patient.id)

    offers = await requester.resources("HealthcareService").search(name="neurochirurgical").fetch()
    assert [o.id for o in offers] == [offer_id]

    body = posted_service_request(offer, patient, attachment=a_pdf())
    created = requester.resource("ServiceRequest", **{k: v for k, v in body.items() if k != "resourceType"})
    await created.save()
    assert created.id and created["status"] == "active"

    # The requester's software follows the status by search.
    tasks = await requester.resources("Task").search(focus=f"ServiceRequest/{created.id}").fetch()
    assert [(t["status"], t["businessStatus"]["coding"][0]["code"]) for t in tasks] == [("requested", "sent")]
    mine = await requester.resources("ServiceRequest").search(patient=patient_id, status="active").fetch_all()
    assert created.id in {r.id for r in mine}

    expert = region.expert.principal
    request_id = __import__("uuid").UUID(created.id)
    await service.accept_request(session, expert, request_id)
    await service.answer_request(
        session,
        expert,
        request_id,
        RequestAnswer(answers={"decision": "surveillance_24h"}, conclusion="Surveillance"),
    )
    await service.sign_report(session, expert, settings, app_store, request_id, report())

    task = await requester.resources("Task").search(_id=created.id).get()
    assert task["status"] == "in-progress" and task["businessStatus"]["coding"][0]["code"] == "answered"
    report_ref = task["output"][0]["valueReference"]["reference"]
    diagnostic = await requester.reference(reference=report_ref).to_resource()
    assert diagnostic["conclusionCode"][0]["coding"][0]["code"] == "surveillance_24h"
    binary = await requester.reference(
        reference=diagnostic["presentedForm"][0]["url"].split("/fhir/")[1]
    ).to_resource()
    assert base64.b64decode(binary["data"]).startswith(b"%PDF")

    # Its errors come back as OperationOutcome, which fhirpy raises.
    wrong = requester.resource(
        "ServiceRequest", status="active", intent="proposal", subject={"reference": "Patient/x"}
    )
    with pytest.raises(OperationOutcome):
        await wrong.save()
