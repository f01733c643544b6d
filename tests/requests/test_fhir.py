"""Requests through the FHIR facade: ServiceRequest / Task / QuestionnaireResponse / DiagnosticReport / Binary
reads and searches (three actors, audit), creation by POST ServiceRequest and by a transaction Bundle (all or
nothing), offers as HealthcareService and forms as Questionnaire."""

from __future__ import annotations

import base64
import io

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from pypdf import PdfReader

from telesante.audit.models import AuditEvent
from telesante.kit import clock
from telesante.offers import forms
from telesante.requests import service
from telesante.requests.models import RequestAttachment, RequestStatus, TeleRequest
from telesante.requests.schemas import RequestAnswer
from tests.factories import token_for
from tests.offers.test_forms import head_trauma_answers
from tests.requests.conftest import give_consent
from tests.requests.test_service import a_pdf, draft, report, sent_request

FHIR_JSON = "application/fhir+json"


@pytest.fixture
async def tokens(session, region):
    return {
        name: await token_for(session, getattr(region, name))
        for name in ("requester", "expert", "colleague", "outsider")
    }


@pytest.fixture
def app_store(app):
    return app.state.blob_store


def searchset(response) -> Bundle:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    parsed = Bundle.model_validate_json(response.content)
    assert parsed.type == "searchset"
    return parsed


def ids(bundle: Bundle) -> set[str]:
    return {entry.resource.id for entry in bundle.entry or []}


def outcome(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["diagnostics"]


async def count(session, model) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(model))).scalar_one()


def answer_items(answers: dict) -> list[dict]:
    """The head-trauma answers as QuestionnaireResponse items, typed as its Questionnaire says."""
    form = forms.latest_form("trauma_cranien")
    items = []
    for name, value in answers.items():
        f = form.field(name)
        if f.type in ("choice", "multichoice"):
            values = [
                {"valueCoding": {"code": code}} for code in (value if isinstance(value, list) else [value])
            ]
        elif f.type == "datetime":
            values = [{"valueDateTime": f"{value}:00+01:00"}]
        elif f.type == "decimal":
            values = [{"valueDecimal": float(str(value).replace(",", "."))}]
        else:
            values = [{"valueString": value}]
        items.append({"linkId": name, "answer": values})
    return items


def posted_service_request(
    offer, patient, *, status="active", attachment: bytes | None = None, **answers
) -> dict:
    items = answer_items(head_trauma_answers(**answers))
    if attachment is not None:
        items.append(
            {
                "linkId": "ct_documents",
                "answer": [
                    {
                        "valueAttachment": {
                            "contentType": "application/pdf",
                            "title": "scanner.pdf",
                            "data": base64.b64encode(attachment).decode(),
                        }
                    }
                ],
            }
        )
    return {
        "resourceType": "ServiceRequest",
        "status": status,
        "intent": "proposal",
        "priority": "urgent",
        "subject": {"reference": f"Patient/{patient.id}"},
        "supportingInfo": [{"reference": f"HealthcareService/{offer.id}"}, {"reference": "#reponses"}],
        "contained": [
            {
                "resourceType": "QuestionnaireResponse",
                "id": "reponses",
                "questionnaire": "urn:telesante:formulaire:trauma_cranien|1",
                "status": "completed",
                "item": items,
            }
        ],
    }


# --- reading ------------------------------------------------------------------------------------------------


async def test_a_sent_request_reads_as_service_request_task_and_answers(
    session, client, region, offer, patient, app_store, settings, tokens
):
    request = await sent_request(session, region, offer, patient, app_store, settings)
    request_id = str(request.id)

    response = await client.get(f"/fhir/ServiceRequest/{request_id}", headers=tokens["requester"])
    assert response.status_code == 200 and response.headers["content-type"].startswith(FHIR_JSON)
    resource = ServiceRequest.model_validate_json(response.content)
    assert (resource.status, resource.intent, resource.priority) == ("active", "proposal", "urgent")
    assert resource.subject.reference == f"Patient/{patient.id}"
    assert resource.requester.reference == f"Practitioner/{region.requester.professional.id}"
    assert [p.reference for p in resource.performer] == [f"Organization/{offer.organisation_id}"]
    assert resource.category[0].coding[0].code == "teleexpertise"
    assert f"HealthcareService/{offer.id}" in {i.reference for i in resource.supportingInfo}
    answers = resource.contained[0]
    assert answers.get_resource_type() == "QuestionnaireResponse"
    by_link = {item.linkId: item.answer for item in answers.item}
    assert by_link["gcs_total"][0].valueInteger == 14  # computed server side: E4 + V4 + M6
    assert by_link["antithrombotic"][0].valueCoding.code == "avk"
    assert float(by_link["inr"][0].valueDecimal) == pytest.approx(2.8)
    assert answers.questionnaire == "urn:telesante:formulaire:trauma_cranien|1"

    task = Task.model_validate_json(
        (await client.get(f"/fhir/Task/{request_id}", headers=tokens["expert"])).content
    )
    assert (task.status, task.businessStatus.coding[0].code) == ("requested", "sent")
    assert task.focus.reference == f"ServiceRequest/{request_id}"
    assert task.for_fhir.reference == f"Patient/{patient.id}"
    assert task.owner.reference == f"Organization/{offer.organisation_id}"
    assert task.restriction.period.end is not None  # the response deadline

    await service.accept_request(session, region.expert.principal, request.id)
    task = Task.model_validate_json(
        (await client.get(f"/fhir/Task/{request_id}", headers=tokens["expert"])).content
    )
    assert (
        task.status == "accepted" and task.owner.reference == f"Practitioner/{region.expert.professional.id}"
    )

    response = await client.get(f"/fhir/QuestionnaireResponse/{request_id}", headers=tokens["requester"])
    assert response.status_code == 200 and response.json()["status"] == "completed"


async def test_only_the_parties_read_and_find_a_request(
    session, client, region, offer, patient, app_store, settings, tokens
):
    request = await sent_request(session, region, offer, patient, app_store, settings)
    request_id, patient_id = (
        request.id,
        str(patient.id),
    )  # refused calls roll back and expire the ORM objects held here
    for who in ("colleague", "outsider"):
        for path in (
            f"ServiceRequest/{request_id}",
            f"Task/{request_id}",
            f"QuestionnaireResponse/{request_id}",
        ):
            assert (await client.get(f"/fhir/{path}", headers=tokens[who])).status_code == 404, (who, path)
        for resource_type in ("ServiceRequest", "Task"):
            found = searchset(await client.get(f"/fhir/{resource_type}", headers=tokens[who]))
            assert found.total == 0 and not found.entry
    for who in ("requester", "expert"):
        found = searchset(
            await client.get("/fhir/ServiceRequest", params={"patient": patient_id}, headers=tokens[who])
        )
        assert ids(found) == {str(request_id)}
    # A web session is not enough for FHIR, and an id that is not a UUID names nothing.
    assert (await client.get(f"/fhir/ServiceRequest/{request_id}")).status_code == 401
    assert (
        await client.get("/fhir/ServiceRequest/pas-un-uuid", headers=tokens["requester"])
    ).status_code == 404


async def test_searches_by_patient_status_parties_and_dates_are_audited(
    session, client, region, offer, patient, app_store, settings, tokens
):
    sent = await sent_request(session, region, offer, patient, app_store, settings)
    kept = await draft(session, region, offer, patient)
    sent_id, draft_id = str(sent.id), str(kept.id)
    requester = tokens["requester"]

    async def found(resource_type: str = "ServiceRequest", headers=requester, **params) -> set[str]:
        return ids(searchset(await client.get(f"/fhir/{resource_type}", params=params, headers=headers)))

    assert await found() == {sent_id, draft_id}
    assert await found(headers=tokens["expert"]) == {sent_id}  # a draft stays with its author
    assert await found(status="draft") == {draft_id}
    assert await found(status="active") == {sent_id}
    assert await found(status="completed") == set()
    assert await found(subject=f"Patient/{patient.id}") == {sent_id, draft_id}
    assert await found(requester=f"Practitioner/{region.requester.professional.id}") == {sent_id, draft_id}
    assert await found(requester=f"Practitioner/{region.expert.professional.id}") == set()
    assert await found(performer=f"Organization/{offer.organisation_id}") == {sent_id, draft_id}
    today = clock.to_paris(clock.now()).date().isoformat()
    assert await found(authored=today) == {sent_id, draft_id}
    assert await found(authored=f"ge{today}") == {sent_id, draft_id}
    assert await found(authored="lt2020-01-01") == set()
    # A range: both bounds together.
    assert await found(**{"authored": ["ge2020-01-01", f"le{today}"]}) == {sent_id, draft_id}
    assert await found(_lastUpdated=f"gt{today}") == set()
    assert await found("Task", status="requested") == {sent_id}
    assert await found("Task", **{"business-status": "draft"}) == {draft_id}
    assert await found("Task", focus=f"ServiceRequest/{sent_id}") == {sent_id}
    assert await found("Task", patient="Patient/pas-un-uuid") == set()

    # Bad values are named.
    for params, expected in (
        ({"status": "ouvert"}, "status"),
        ({"authored": "2026-13-01"}, "authored"),
        ({"authored": "ne2026-01-01"}, "préfixe"),
        ({"authored": "hier"}, "authored"),
        ({"status": "active", "performer": "a,b"}, "une seule valeur"),
    ):
        message = outcome(await client.get("/fhir/ServiceRequest", params=params, headers=requester), 400)
        assert expected in message, (params, message)

    # Every request returned by a search is an audited access to the patient's data.
    audited = await session.execute(
        sa.select(AuditEvent.object_id).where(
            AuditEvent.object_type == "TeleRequest", AuditEvent.action == "search"
        )
    )
    assert {str(row) for row in audited.scalars()} >= {sent_id, draft_id}


async def test_a_search_date_without_offset_is_paris_time_and_the_edges_of_time_are_refused(
    session, client, region, offer, patient, tokens
):
    """FHIR search (R4 search.html#date): a dateTime without an offset is the server's local time, Paris, and
    stands for its whole minute or second; any year is a valid search (the 2000–2100 bounds of a date typed in a
    form do not apply). A date at the very edge of what Python's datetime holds (year 1 in Paris is before year
    1 in UTC; 9999-12-31 has no next day) is a 400 naming the parameter, not a 500."""
    from datetime import UTC, datetime

    clock.set_clock(lambda: datetime(2026, 12, 1, 8, 0, 30, tzinfo=UTC))  # 09:00:30 in Paris
    kept = str((await draft(session, region, offer, patient)).id)
    requester = tokens["requester"]

    async def search(value: str):
        return await client.get("/fhir/ServiceRequest", params={"authored": value}, headers=requester)

    assert ids(searchset(await search("2026-12-01T09:00"))) == {kept}  # [08:00, 08:01) UTC
    assert ids(searchset(await search("2026-12-01T08:00"))) == set()  # 07:00 UTC
    assert ids(searchset(await search("2026-12-01T08:00Z"))) == {kept}
    assert ids(searchset(await search("lt1999-12-31T23:00"))) == set()
    assert ids(searchset(await search("ge1999-12-31T23:00"))) == {kept}
    for value in (
        "0001",
        "0001-01",
        "0001-01-01",
        "0001-01-01T00:00",
        "9999-12-31",
        "9999-12-31T23:59-14:00",
    ):
        message = outcome(await search(value), 400)
        assert message.startswith("authored : "), (value, message)


async def test_the_signed_report_is_a_diagnostic_report_with_its_pdf(
    session, client, region, offer, patient, app_store, settings, tokens
):
    request = await sent_request(session, region, offer, patient, app_store, settings)
    expert = region.expert.principal
    await service.accept_request(session, expert, request.id)
    await service.answer_request(
        session,
        expert,
        request.id,
        RequestAnswer(answers={"decision": "surveillance_24h"}, conclusion="Surveillance"),
    )
    signed = await service.sign_report(session, expert, settings, app_store, request.id, report())
    signed_id, request_id = str(signed.id), str(request.id)

    found = searchset(
        await client.get(
            "/fhir/DiagnosticReport",
            params={"based-on": f"ServiceRequest/{request_id}"},
            headers=tokens["requester"],
        )
    )
    assert ids(found) == {signed_id}
    resource = DiagnosticReport.model_validate_json(
        (await client.get(f"/fhir/DiagnosticReport/{signed_id}", headers=tokens["requester"])).content
    )
    assert resource.status == "final" and resource.conclusion.startswith("Pas d'indication")
    assert resource.conclusionCode[0].coding[0].code == "surveillance_24h"
    assert resource.identifier[0].value == signed.content_hash
    assert resource.basedOn[0].reference == f"ServiceRequest/{request_id}"
    pdf_url = resource.presentedForm[0].url
    assert (
        pdf_url.endswith(f"/fhir/Binary/{signed_id}")
        and resource.presentedForm[0].contentType == "application/pdf"
    )

    raw = await client.get(
        f"/fhir/Binary/{signed_id}", headers={**tokens["requester"], "Accept": "application/pdf"}
    )
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/pdf"
    assert raw.content.startswith(b"%PDF") and raw.headers["cache-control"] == "no-store"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(raw.content)).pages)
    assert signed.content_hash in text.replace("\n", "")
    binary = (await client.get(f"/fhir/Binary/{signed_id}", headers=tokens["requester"])).json()
    assert binary["resourceType"] == "Binary" and base64.b64decode(binary["data"]) == raw.content

    task = Task.model_validate_json(
        (await client.get(f"/fhir/Task/{request_id}", headers=tokens["requester"])).content
    )
    assert task.output[0].valueReference.reference == f"DiagnosticReport/{signed_id}"
    assert (
        searchset(
            await client.get(
                "/fhir/DiagnosticReport", params={"status": "preliminary"}, headers=tokens["requester"]
            )
        ).total
        == 0
    )

    for who in ("colleague", "outsider"):
        for path in (f"DiagnosticReport/{signed_id}", f"Binary/{signed_id}"):
            assert (await client.get(f"/fhir/{path}", headers=tokens[who])).status_code == 404, (who, path)
        assert searchset(await client.get("/fhir/DiagnosticReport", headers=tokens[who])).total == 0


# --- creation -----------------------------------------------------------------------------------------------


async def test_external_software_creates_and_sends_a_request_with_its_ct(
    session, client, region, offer, patient, tokens
):
    await give_consent(session, region.requester, patient.id)
    body = posted_service_request(offer, patient, attachment=a_pdf())
    response = await client.post(
        "/fhir/ServiceRequest", json=body, headers={**tokens["requester"], "Content-Type": FHIR_JSON}
    )
    assert response.status_code == 201, response.text
    created = ServiceRequest.model_validate_json(response.content)
    assert response.headers["location"].endswith(f"/fhir/ServiceRequest/{created.id}")
    assert created.status == "active" and created.priority == "urgent"

    stored = await session.get(TeleRequest, __import__("uuid").UUID(created.id))
    assert stored.status == RequestStatus.SENT and stored.consent_id is not None
    assert stored.answers["gcs_total"] == 14 and stored.answers["inr"] == pytest.approx(2.8)
    attachments = (
        (await session.execute(sa.select(RequestAttachment).where(RequestAttachment.request_id == stored.id)))
        .scalars()
        .all()
    )
    assert [(a.filename, a.content_type) for a in attachments] == [("scanner.pdf", "application/pdf")]
    # It reached the experts' worklist like any request.
    found = searchset(
        await client.get("/fhir/Task", params={"status": "requested"}, headers=tokens["expert"])
    )
    assert created.id in ids(found)


async def test_a_posted_draft_stays_a_draft_and_bad_requests_leave_nothing_behind(
    session, client, region, offer, patient, tokens, app_store
):
    headers = tokens["requester"]
    fresh = posted_service_request(
        offer, patient
    )  # built now: refused calls expire the ORM objects held here
    bad_data = posted_service_request(offer, patient)
    response = await client.post(
        "/fhir/ServiceRequest", json=posted_service_request(offer, patient, status="draft"), headers=headers
    )
    assert response.status_code == 201 and response.json()["status"] == "draft"
    before = await count(session, TeleRequest), await count(session, RequestAttachment)

    no_consent = posted_service_request(offer, patient, attachment=a_pdf())
    cases = [
        (no_consent, 409, "Consentement"),
        (
            {
                **no_consent,
                "supportingInfo": [{"reference": "HealthcareService/00000000-0000-0000-0000-000000000000"}],
            },
            422,
            "Offre inconnue",
        ),
        ({**no_consent, "supportingInfo": []}, 422, "offre"),
        ({**no_consent, "subject": {"reference": "Group/1"}}, 422, "subject"),
        ({**no_consent, "status": "completed"}, 422, "status"),
        (
            {**no_consent, "requester": {"reference": f"Practitioner/{region.expert.professional.id}"}},
            422,
            "requester",
        ),
        (posted_service_request(offer, patient, gcs_eyes="y9"), 422, "Ouverture des yeux"),
        ({**no_consent, "intent": "plan"}, 422, "intent"),
        ({"resourceType": "Patient"}, 400, "ServiceRequest"),
        ({"resourceType": "ServiceRequest", "status": "active"}, 400, "subject : champ obligatoire"),
    ]
    for body, status, expected in cases:
        message = outcome(await client.post("/fhir/ServiceRequest", json=body, headers=headers), status)
        assert expected.lower() in message.lower(), (status, expected, message)
    message = outcome(
        await client.post("/fhir/ServiceRequest", content=b"{pas du json", headers=headers), 400
    )
    assert "JSON" in message
    bad_data["contained"][0]["item"].append(
        {
            "linkId": "ct_documents",
            "answer": [{"valueAttachment": {"contentType": "application/pdf", "data": "%%%"}}],
        }
    )
    assert "base64" in outcome(await client.post("/fhir/ServiceRequest", json=bad_data, headers=headers), 422)
    assert (await count(session, TeleRequest), await count(session, RequestAttachment)) == before
    stored_blobs = [
        p for p in (app_store.root.rglob("*") if hasattr(app_store, "root") else []) if p.is_file()
    ]
    assert stored_blobs == []  # the refused request's scanner was removed with the rollback

    # The patient must be in the requester's care; an outsider cannot create anything.
    outsider = await client.post("/fhir/ServiceRequest", json=fresh, headers=tokens["outsider"])
    assert outsider.status_code in (403, 422) and outsider.json()["resourceType"] == "OperationOutcome"
    colleague = await client.post("/fhir/ServiceRequest", json=fresh, headers=tokens["colleague"])
    assert colleague.status_code == 404  # the patient is outside the colleague's care relationships


async def test_a_transaction_bundle_creates_the_request_with_its_task(
    session, client, region, offer, patient, tokens
):
    await give_consent(session, region.requester, patient.id)
    service_request = posted_service_request(offer, patient, ct_result="non_realise")
    answers = service_request.pop("contained")[0]
    answers.pop("id")
    service_request["supportingInfo"] = [
        {"reference": f"HealthcareService/{offer.id}"},
        {"reference": "urn:uuid:2d5c3a52-4a43-4d8e-9f0c-3f4c8b1e7a10"},
    ]
    organisation = next(iter(region.requester.principal.clinical_organisation_ids))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:6f1d2a3b-0c4e-4b5a-9d8e-7f6a5b4c3d2e",
                "resource": service_request,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {
                "fullUrl": "urn:uuid:8a7b6c5d-4e3f-4a1b-8c9d-0e1f2a3b4c5d",
                "resource": {
                    "resourceType": "Task",
                    "status": "requested",
                    "intent": "order",
                    "focus": {"reference": "urn:uuid:6f1d2a3b-0c4e-4b5a-9d8e-7f6a5b4c3d2e"},
                    "requester": {"reference": f"Organization/{organisation}"},
                },
                "request": {"method": "POST", "url": "Task"},
            },
            {
                "fullUrl": "urn:uuid:2d5c3a52-4a43-4d8e-9f0c-3f4c8b1e7a10",
                "resource": answers,
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
        ],
    }
    response = await client.post("/fhir", json=bundle, headers=tokens["requester"])
    assert response.status_code == 200, response.text
    result = Bundle.model_validate_json(response.content)
    assert result.type == "transaction-response"
    locations = [entry.response.location for entry in result.entry]
    assert [loc.split("/")[0] for loc in locations] == ["ServiceRequest", "Task", "QuestionnaireResponse"]
    request_id = locations[0].split("/")[1]
    task = Task.model_validate_json(
        (await client.get(f"/fhir/{locations[1]}", headers=tokens["requester"])).content
    )
    assert task.focus.reference == f"ServiceRequest/{request_id}" and task.status == "requested"
    assert task.requester.reference == f"Organization/{organisation}"

    before = await count(session, TeleRequest)
    wrong_focus = {
        **bundle,
        "entry": [
            bundle["entry"][0],
            {
                **bundle["entry"][1],
                "resource": {**bundle["entry"][1]["resource"], "focus": {"reference": "urn:uuid:autre"}},
            },
            bundle["entry"][2],
        ],
    }
    assert "Task.focus" in outcome(
        await client.post("/fhir", json=wrong_focus, headers=tokens["requester"]), 400
    )
    with_patient = {
        **bundle,
        "entry": [
            *bundle["entry"],
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    assert "Patient" in outcome(
        await client.post("/fhir", json=with_patient, headers=tokens["requester"]), 400
    )
    # A batch is the telemonitoring ingest: each entry is answered, and a request is refused there (nothing created)
    batch = {**bundle, "type": "batch"}
    answer = await client.post("/fhir", json=batch, headers=tokens["requester"])
    assert answer.status_code == 200 and answer.json()["type"] == "batch-response"
    for entry in answer.json()["entry"]:
        assert entry["response"]["status"] == "400 Bad Request"
        assert "transaction" in entry["response"]["outcome"]["issue"][0]["diagnostics"]
    assert await count(session, TeleRequest) == before


# --- offers, forms, capability ------------------------------------------------------------------------------


async def test_offers_and_forms_are_published(client, offer, tokens):
    found = searchset(await client.get("/fhir/HealthcareService", headers=tokens["requester"]))
    assert str(offer.id) in ids(found)
    service_resource = (
        await client.get(f"/fhir/HealthcareService/{offer.id}", headers=tokens["requester"])
    ).json()
    assert service_resource["name"] == offer.title
    assert service_resource["providedBy"]["reference"] == f"Organization/{offer.organisation_id}"
    assert (
        searchset(
            await client.get(
                "/fhir/HealthcareService", params={"name": "dermato"}, headers=tokens["requester"]
            )
        ).total
        == 0
    )

    questionnaire = Questionnaire.model_validate_json(
        (await client.get("/fhir/Questionnaire/trauma-cranien-v1", headers=tokens["requester"])).content
    )
    questions = {item.linkId: item for group in questionnaire.item for item in group.item}
    assert questions["gcs_eyes"].type == "choice" and questions["gcs_total"].readOnly
    assert questions["gcs_total"].code[0].code == "9269-2"  # LOINC Glasgow coma score total
    assert questions["ct_documents"].type == "attachment"
    by_url = searchset(
        await client.get(
            "/fhir/Questionnaire",
            params={"url": "urn:telesante:formulaire:trauma_cranien"},
            headers=tokens["requester"],
        )
    )
    assert ids(by_url) == {"trauma-cranien-v1"}
    assert (
        await client.get("/fhir/Questionnaire/inconnu-v1", headers=tokens["requester"])
    ).status_code == 404

    capability = CapabilityStatement.model_validate_json((await client.get("/fhir/metadata")).content)
    resources = {r.type: r for r in capability.rest[0].resource}
    assert {
        "ServiceRequest",
        "Task",
        "DiagnosticReport",
        "HealthcareService",
        "Questionnaire",
        "Binary",
    } <= set(resources)
    assert "create" in {i.code for i in resources["ServiceRequest"].interaction}
    assert [i.code for i in capability.rest[0].interaction] == ["transaction", "batch"]


JUNK = (
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "x",
    "Patient/x",
    [],
    {},
    [{}],
    [None],
    {"reference": 5},
    [{"reference": "#"}],
)


async def test_mangled_resources_get_a_4xx_never_a_500_and_write_nothing(
    session, client, offer, patient, tokens
):
    """Every element of a valid ServiceRequest (and of its answers) replaced, in turn, by wrong shapes."""
    valid = posted_service_request(offer, patient)  # built before any refused call expires the ORM objects
    before = await count(session, TeleRequest)
    statuses = set()

    async def post(body, path="/fhir/ServiceRequest"):
        response = await client.post(path, json=body, headers=tokens["requester"])
        assert response.status_code < 500, (body, response.text)
        assert response.json()["resourceType"] == "OperationOutcome", response.text
        statuses.add(response.status_code)

    for key in [k for k in valid if k != "resourceType"]:
        for junk in JUNK:
            await post({**valid, key: junk})
    answers = valid["contained"][0]
    for key in ("item", "status", "subject"):
        for junk in JUNK:
            await post({**valid, "contained": [{**answers, key: junk}]})
    for junk in JUNK:
        item = {"linkId": "gcs_eyes", "answer": [{"valueCoding": junk}]}
        await post({**valid, "contained": [{**answers, "item": [item]}]})
        await post({"resourceType": "Bundle", "type": "transaction", "entry": junk}, path="/fhir")
        await post(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"resource": valid, "request": junk}],
            },
            path="/fhir",
        )
    await post(valid)  # no consent recorded: refused too (409), after every check above
    assert await count(session, TeleRequest) == before
    assert statuses <= {400, 404, 409, 422}


async def test_a_request_with_a_document_over_a_megabyte_is_accepted(
    session, client, region, offer, patient, tokens
):
    """The body limit of FHIR creations allows documents up to the attachment limit, in base64."""
    import numpy as np
    from PIL import Image

    await give_consent(session, region.requester, patient.id)
    noise = np.random.default_rng(7).integers(
        0, 256, (800, 800, 3), dtype=np.uint8
    )  # incompressible: ~1.9 MB
    out = io.BytesIO()
    Image.fromarray(noise).save(out, format="PNG")
    assert out.tell() > 1_048_576
    body = posted_service_request(offer, patient, attachment=out.getvalue())
    body["contained"][0]["item"][-1]["answer"][0]["valueAttachment"].update(
        contentType="image/png", title="coupe.png"
    )
    response = await client.post("/fhir/ServiceRequest", json=body, headers=tokens["requester"])
    assert response.status_code == 201, response.text[:300]
