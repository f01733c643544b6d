"""Request pages, as a browser without JavaScript uses them: from the patient record to the signed report, with
the requester and the expert each signed in on their own client."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from telesante.kit import clock
from tests.factories import PASSWORD
from tests.helpers import csrf_token, login
from tests.requests.conftest import give_consent
from tests.requests.test_service import a_pdf


def text_of(response) -> str:
    return html.unescape(response.text)


def alert(response) -> str:
    match = re.search(r'role="alert"[^>]*>(.*?)</', response.text, re.S)
    return html.unescape(match.group(1).strip()) if match else ""


@pytest.fixture
async def expert_client(app):
    transport = httpx.ASGITransport(app=app, client=("192.0.2.11", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


async def post(client, path: str, page: str, data: dict | None = None, files=None):
    token = await csrf_token(client, page)
    return await client.post(path, data={**(data or {}), "csrf_token": token}, files=files)


HEAD_TRAUMA_FORM = {
    "injury_at": "2026-11-23T02:40",
    "mechanism": "chute_plain_pied",
    "loss_of_consciousness": "non",
    "amnesia": "oui",
    "gcs_eyes": "y4",
    "gcs_verbal": "v4",
    "gcs_motor": "m6",
    "neuro_signs": "aucun",
    "antithrombotic": "avk",
    "antithrombotic_drug": "Fluindione 20 mg",
    "last_dose_at": "2026-11-22T20:00",
    "inr": "2,8",
    "ct_result": "normal",
    "ct_at": "2026-11-23T03:30",
    "question": "Conduite à tenir ?",
}


async def test_head_trauma_request_from_the_record_to_the_signed_report(
    session, client, expert_client, region, offer, patient, store, app
):
    app.state.blob_store = store
    await login(client, region.requester.email, PASSWORD)
    await login(expert_client, region.expert.email, PASSWORD)
    record = await client.get(f"/patients/{patient.id}")
    assert f"/demandes/nouvelle?patient_id={patient.id}" in record.text

    choose = await client.get(f"/demandes/nouvelle?patient_id={patient.id}")
    assert "Avis neurochirurgical 24/7" in text_of(choose)
    new_page = f"/demandes/nouvelle?patient_id={patient.id}&offer_id={offer.id}"
    form_page = await client.get(new_page)
    assert "Réponse motrice (M)" in text_of(form_page) and 'type="datetime-local"' in form_page.text

    # A bad value: the form comes back with the field named, nothing is created.
    bad = await post(client, new_page, new_page, {**HEAD_TRAUMA_FORM, "gcs_eyes": "y9"})
    assert bad.status_code == 422 and "Ouverture des yeux" in alert(bad)
    created = await post(client, new_page, new_page, HEAD_TRAUMA_FORM)
    assert created.status_code == 303
    request_url = created.headers["location"]
    detail = await client.get(request_url)
    assert "Brouillon" in text_of(detail) and "Score de Glasgow total" in text_of(detail)

    # Sending without the CT and without consent: refused with the reasons, still a draft.
    refused = await post(client, f"{request_url}/envoyer", request_url)
    assert refused.status_code == 422 and "Scanner" in alert(refused)
    uploaded = await post(
        client,
        f"{request_url}/documents",
        request_url,
        files={"file": ("scanner.pdf", a_pdf(), "application/pdf")},
    )
    assert uploaded.status_code == 303
    no_consent = await post(client, f"{request_url}/envoyer", request_url)
    assert no_consent.status_code == 409 and "onsentement" in alert(no_consent)
    await give_consent(session, region.requester, patient.id)
    sent = await post(client, f"{request_url}/envoyer", request_url)
    assert sent.status_code == 303

    # The expert sees it in the worklist, accepts, asks; the requester answers.
    worklist = await expert_client.get("/demandes?vue=expert")
    assert request_url in worklist.text and "Urgent" in text_of(worklist)
    assert 'sse-connect="/evenements"' in worklist.text
    assert (await post(expert_client, f"{request_url}/accepter", request_url)).status_code == 303
    asked = await post(
        expert_client,
        f"{request_url}/messages",
        request_url,
        {"kind": "question", "body": "Heure de la chute ?"},
    )
    assert asked.status_code == 303
    replied = await post(client, f"{request_url}/messages", request_url, {"kind": "reply", "body": "02 h 40"})
    assert replied.status_code == 303
    answered = await post(
        expert_client,
        f"{request_url}/repondre",
        request_url,
        {"decision": "surveillance_24h", "conclusion": "Surveillance 24 h, scanner de contrôle H12-H24."},
    )
    assert answered.status_code == 303
    closing = await post(client, f"{request_url}/cloturer", request_url)
    assert closing.status_code == 409 and "compte rendu signé" in alert(closing)
    signed = await post(
        expert_client,
        f"{request_url}/compte-rendu",
        request_url,
        {
            "conclusion": "Surveillance 24 h, scanner de contrôle H12-H24.",
            "prescriptions": "Scanner cérébral de contrôle entre H12 et H24",
            "participant_name": ["Dr Le Goff", "Dr Jaouen"],
            "participant_role": ["médecin requérant", "neurochirurgien"],
            "performed_at": clock.to_paris(clock.now()).strftime("%Y-%m-%dT%H:%M"),
            "technical_incident": "non",
        },
    )
    assert signed.status_code == 303, alert(signed)

    final = await client.get(request_url)
    assert "Garder et surveiller au moins 24 h" in text_of(final)
    pdf = await client.get(f"{request_url}/compte-rendu.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["cache-control"] == "no-store" and pdf.headers["x-content-type-options"] == "nosniff"
    assert pdf.headers["content-disposition"].startswith("inline;")
    assert (await post(client, f"{request_url}/cloturer", request_url)).status_code == 303
    assert "Clôturée" in text_of(await client.get(request_url))


async def test_worklist_filters_by_specialty_and_lateness(
    session, expert_client, region, offer, patient, store, settings
):
    from datetime import timedelta

    from tests.requests.test_service import sent_request

    request = await sent_request(session, region, offer, patient, store, settings)
    request_id, deadline = str(request.id), clock.as_utc(request.deadline_at)
    await login(expert_client, region.expert.email, PASSWORD)
    assert request_id in (await expert_client.get("/demandes?vue=expert&specialite=Neurochirurgie")).text
    assert request_id not in (await expert_client.get("/demandes?vue=expert&specialite=Dermatologie")).text
    assert request_id not in (await expert_client.get("/demandes?vue=expert&en_retard=oui")).text
    clock.set_clock(lambda: deadline + timedelta(minutes=1))
    late = await expert_client.get("/demandes?vue=expert&en_retard=oui")
    assert request_id in late.text and "En retard" in text_of(late)


async def test_the_report_date_is_paris_time_and_a_far_year_is_named(
    session, expert_client, region, offer, patient, store, settings, app
):
    """The report form's « Date et heure de réalisation » is Paris wall-clock time (the shared rule of
    clock.from_paris): the hour repeated in October is its first, summer-time occurrence. A year typed wrong
    (0001 overflowed in UTC: a 500) or a blank field is named, and nothing is signed."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from telesante.requests import service
    from telesante.requests.models import RequestReport
    from telesante.requests.schemas import RequestAnswer
    from tests.requests.test_service import sent_request

    clock.set_clock(lambda: datetime(2026, 10, 25, 12, 0, tzinfo=UTC))  # the day summer time ends
    app.state.blob_store = store
    request = await sent_request(session, region, offer, patient, store, settings)
    expert = region.expert.principal
    await service.accept_request(session, expert, request.id)
    await service.answer_request(
        session,
        expert,
        request.id,
        RequestAnswer(answers={"decision": "surveillance_24h"}, conclusion="Surveiller"),
    )
    request_url = f"/demandes/{request.id}"
    await login(expert_client, region.expert.email, PASSWORD)
    report = {
        "conclusion": "Surveillance 24 h.",
        "prescriptions": "aucune",
        "participant_name": ["Dr Le Goff"],
        "participant_role": ["médecin requérant"],
        "technical_incident": "non",
    }

    async def signed_reports() -> int:
        query = sa.select(sa.func.count()).select_from(RequestReport)
        return (await session.execute(query.where(RequestReport.request_id == request.id))).scalar_one()

    for performed_at, message in (
        ("0001-01-01T00:00", "performed_at : date attendue entre 2000 et 2100"),
        ("25/10/2026 02:30", "performed_at : date et heure attendues (AAAA-MM-JJTHH:MM)"),
        ("", "performed_at : champ obligatoire"),
    ):
        refused = await post(
            expert_client,
            f"{request_url}/compte-rendu",
            request_url,
            {**report, "performed_at": performed_at},
        )
        assert refused.status_code == 422 and alert(refused) == message, alert(refused)
    assert await signed_reports() == 0

    signed = await post(
        expert_client,
        f"{request_url}/compte-rendu",
        request_url,
        {**report, "performed_at": "2026-10-25T02:30"},
    )
    assert signed.status_code == 303, alert(signed)
    stored = (
        await session.execute(sa.select(RequestReport).where(RequestReport.request_id == request.id))
    ).scalar_one()
    assert clock.as_utc(stored.performed_at) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST


async def test_a_far_year_in_a_form_date_is_named_by_its_label(session, client, region, offer, patient):
    """A typo in a date-time answer of the request form (year 0001 overflowed in UTC: a 500) comes back with
    the field's label and what is expected; nothing is created."""
    import sqlalchemy as sa

    from telesante.requests.models import TeleRequest

    await login(client, region.requester.email, PASSWORD)
    new_page = f"/demandes/nouvelle?patient_id={patient.id}&offer_id={offer.id}"
    refused = await post(client, new_page, new_page, {**HEAD_TRAUMA_FORM, "injury_at": "0001-01-01T00:00"})
    assert refused.status_code == 422, alert(refused)
    assert alert(refused) == "« Date et heure du traumatisme » : date attendue entre 2000 et 2100."
    assert (await session.execute(sa.select(sa.func.count()).select_from(TeleRequest))).scalar_one() == 0
