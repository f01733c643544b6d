"""The JSON API of TéléAVC where it reads what a person typed: a glycaemia in g/L is stored in the same mmol/L
through the API and through the case page."""

from __future__ import annotations

from telesante.stroke import service
from tests.factories import token_for
from tests.patients.test_pages import post_form, sign_in, text_of
from tests.stroke.test_service import alert


async def test_a_glycaemia_in_g_per_litre_is_stored_alike_by_the_api_and_the_page(
    client, session, settings, network, patient
):
    case_id = (
        await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    ).id
    url, headers = f"/api/stroke/cases/{case_id}/measures", await token_for(session, network.emergency)

    by_api = await client.patch(url, json={"glucose": 1.26, "glucose_unit": "g/L"}, headers=headers)
    assert by_api.status_code == 200, by_api.text
    assert by_api.json()["glucose_mmol"] == 7.0  # 1.26 × 5.551 = 6.994
    assert "glucose" not in by_api.json() and "glucose_unit" not in by_api.json()

    reset = await client.patch(url, json={"glucose_mmol": 5.0}, headers=headers)
    assert reset.json()["glucose_mmol"] == 5.0
    await sign_in(client, network.emergency)
    page = f"/avc/{case_id}"
    by_page = await post_form(client, f"{page}/mesures", {"glucose": "1,26", "glucose_unit": "g"}, page=page)
    assert by_page.status_code == 303, text_of(by_page)
    stored = (await client.get(f"/api/stroke/cases/{case_id}", headers=headers)).json()["case"]
    assert stored["glucose_mmol"] == 7.0

    in_mmol = await client.patch(url, json={"glucose": 6.44}, headers=headers)  # mmol/L by default
    assert in_mmol.json()["glucose_mmol"] == 6.44


async def test_a_bad_glycaemia_is_named_and_nothing_is_written(client, session, settings, network, patient):
    case_id = (
        await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    ).id
    url, headers = f"/api/stroke/cases/{case_id}/measures", await token_for(session, network.emergency)
    for body, field in (
        ({"weight_kg": 70, "glucose": 12, "glucose_unit": "g/L"}, "glucose"),  # 66.6 mmol/L
        ({"weight_kg": 70, "glucose": 1, "glucose_unit": "mg/dL"}, "glucose_unit"),
        ({"weight_kg": 70, "glucose_mmol": 1.2, "glucose_unit": "g/L"}, "glucose_unit"),
    ):
        response = await client.patch(url, json=body, headers=headers)
        assert response.status_code == 422, response.text
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    stored = (await client.get(f"/api/stroke/cases/{case_id}", headers=headers)).json()["case"]
    assert (stored["weight_kg"], stored["glucose_mmol"]) == (None, None)
