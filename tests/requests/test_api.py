"""The JSON API of requests with bearer tokens: the expert is told at once (event on the live stream, e-mail
without patient data), and bad input gets a clear 4xx."""

from __future__ import annotations

import asyncio

from telesante.kit import clock
from tests.factories import token_for
from tests.notifications.test_mail import mail_settings
from tests.offers.test_forms import head_trauma_answers
from tests.requests.test_service import a_pdf

pytest_plugins = ["tests.notifications.test_mail"]


async def test_sending_tells_the_experts_by_event_and_by_mail_without_patient_data(
    session, client, app, region, offer, patient, store, smtp, tmp_path
):
    inbox, port = smtp
    app.state.blob_store = store
    app.state.settings = mail_settings(tmp_path, port)
    requester = await token_for(session, region.requester)
    expert = await token_for(session, region.expert)

    created = await client.post(
        "/api/requests",
        json={"offer_id": str(offer.id), "patient_id": str(patient.id), "answers": head_trauma_answers()},
        headers=requester,
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    uploaded = await client.post(
        f"/api/requests/{request_id}/attachments",
        files={"file": ("scanner.pdf", a_pdf(), "application/pdf")},
        headers=requester,
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["content_type"] == "application/pdf" and len(uploaded.json()["sha256"]) == 64

    bus = app.state.event_bus
    await bus.start()
    try:
        async with bus.subscribe(region.expert.account.id) as stream:
            sent = await client.post(
                f"/api/requests/{request_id}/send",
                json={"emergency_exemption": "Patient confus, aucun proche joignable"},
                headers=requester,
            )
            assert sent.status_code == 200, sent.text
            event = await asyncio.wait_for(stream.__anext__(), timeout=5)
    finally:
        await bus.stop()
    assert event.type == "request.sent" and event.urgent is True
    assert event.data["request_id"] == request_id and "LE GOFF" not in event.to_json()

    [(recipients, message)] = inbox.messages
    assert recipients == [region.expert.email, region.second_expert.email] or set(recipients) == {
        region.expert.email,
        region.second_expert.email,
    }
    body = message.get_content()
    assert f"/demandes/{request_id}" in body and "URGENTE" in message["Subject"]
    assert "LE GOFF" not in body and "Le Goff" not in body and "YANN" not in body

    detail = await client.get(f"/api/requests/{request_id}", headers=expert)
    assert detail.status_code == 200 and detail.json()["status"] == "sent"
    assert detail.json()["transitions"][-1]["reason"].startswith("urgence")
    listed = await client.get("/api/requests", params={"side": "expert", "status": "sent"}, headers=expert)
    assert [item["id"] for item in listed.json()["items"]] == [request_id]
    assert listed.json()["items"][0]["overdue"] is False and listed.json()["items"][0]["urgent"] is True


async def test_bad_input_gets_a_clear_error_and_nothing_is_written(
    session, client, app, region, offer, patient
):
    requester = await token_for(session, region.requester)
    patient_id, offer_id = str(patient.id), str(offer.id)  # a refused request expires the test's objects
    unknown_offer = await client.post(
        "/api/requests",
        json={"offer_id": patient_id, "patient_id": patient_id, "answers": {}},
        headers=requester,
    )
    assert unknown_offer.status_code == 422 and unknown_offer.json()["field"] == "offer_id"
    bad_answers = await client.post(
        "/api/requests",
        json={
            "offer_id": offer_id,
            "patient_id": patient_id,
            "answers": {"gcs_eyes": "y0", "x": 1},
        },
        headers=requester,
    )
    assert bad_answers.status_code == 422
    assert {e["field"] for e in bad_answers.json()["errors"]} == {"gcs_eyes", "x"}
    listed = await client.get("/api/requests", params={"side": "requester"}, headers=requester)
    assert listed.json()["total"] == 0
    wrong_state = await client.post(f"/api/requests/{patient_id}/accept", headers=requester)
    assert wrong_state.status_code == 404


async def test_forms_are_served_as_data(session, client, region):
    token = await token_for(session, region.requester)
    forms = await client.get("/api/forms", headers=token)
    assert forms.status_code == 200
    head = next(f for f in forms.json() if f["code"] == "trauma_cranien")
    assert head["version"] == 1 and any(
        f["name"] == "gcs_total" for s in head["sections"] for f in s["fields"]
    )
    assert (await client.get("/api/forms/trauma_cranien/7", headers=token)).status_code == 404
    assert clock.now()  # the clock is the server's


async def test_a_page_offset_beyond_any_list_is_refused_not_a_crash(session, client, region):
    """schemathesis found offset=9801997404757726149624729698304 overflowing SQLite's integers (500)."""
    headers = await token_for(session, region.requester)
    for path in ("/api/requests", "/api/patients", "/api/organisations"):
        response = await client.get(path, params={"offset": str(10**30)}, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["field"] == "offset"
    assert (await client.get("/api/requests", params={"offset": "1000000"}, headers=headers)).json()[
        "items"
    ] == []


async def test_form_dates_are_paris_time_and_a_far_year_is_named(session, client, region, offer, patient):
    """A form's date-time answer without an offset is Paris wall-clock time (the shared rule of
    clock.parse_paris): the hour repeated in October is its first, summer-time occurrence; an offset given is
    kept. A year outside 2000–2100 is named by the field's label (year 0001 overflowed in UTC: a 500), and
    nothing is written."""
    requester = await token_for(session, region.requester)
    patient_id, offer_id = str(patient.id), str(offer.id)  # a refused request expires the test's objects

    def new_request(**answers):
        return client.post(
            "/api/requests",
            json={"offer_id": offer_id, "patient_id": patient_id, "answers": head_trauma_answers(**answers)},
            headers=requester,
        )

    refused = await new_request(injury_at="0001-01-01T00:00", ct_at="2207-01-01T08:00+01:00")
    assert refused.status_code == 422, refused.text
    assert {e["field"]: e["message"] for e in refused.json()["errors"]} == {
        "injury_at": "« Date et heure du traumatisme » : date attendue entre 2000 et 2100.",
        "ct_at": "« Date et heure du scanner » : date attendue entre 2000 et 2100.",
    }
    listed = await client.get("/api/requests", params={"side": "requester"}, headers=requester)
    assert listed.json()["total"] == 0

    created = await new_request(injury_at="2026-10-25T02:30", ct_at="2026-10-25T02:30+01:00")
    assert created.status_code == 201, created.text
    answers = created.json()["answers"]
    assert answers["injury_at"] == "2026-10-25T00:30+00:00"  # 02:30 CEST, the first of the two
    assert answers["ct_at"] == "2026-10-25T01:30+00:00"  # 02:30 CET, as its offset says
