"""The JSON API of remote monitoring (bearer tokens): enrolment, readings, the team's worklist and an alert's
triage; the colleague elsewhere and the outsider get nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

from telesante.monitoring import service
from telesante.monitoring.models import ReadingSource
from tests.factories import token_for


async def test_enrol_then_triage_over_the_json_api(client, session, network, patient, frozen):
    patient_uuid, programme_id = patient.id, str(network.programme.id)  # read before requests roll back
    patient_id = str(patient_uuid)
    headers = {
        name: await token_for(session, getattr(network, name))
        for name in ("cardiologist", "nurse", "doctor", "colleague", "outsider")
    }
    programmes = await client.get("/api/monitoring/programmes", headers=headers["cardiologist"])
    assert [p["id"] for p in programmes.json()] == [programme_id]
    for stranger in ("colleague", "outsider"):
        refused = await client.post(
            f"/api/patients/{patient_id}/monitoring",
            json={
                "programme_id": programme_id,
                "indication": "IC",
                "prescriber_name": "Dr X",
                "decision": "given",
            },
            headers=headers[stranger],
        )
        assert refused.status_code == 404, stranger
    created = await client.post(
        f"/api/patients/{patient_id}/monitoring",
        json={
            "programme_id": programme_id,
            "indication": "Insuffisance cardiaque",
            "prescriber_name": "Dr Martin",
            "decision": "given",
            "overrides": {"ic_pas_basse": {"below": 100}},
        },
        headers=headers["cardiologist"],
    )
    assert created.status_code == 201, created.text
    enrolment_id = created.json()["id"]
    bad = await client.post(
        f"/api/patients/{patient_id}/monitoring",
        json={
            "programme_id": programme_id,
            "indication": "IC",
            "prescriber_name": "Dr X",
            "decision": "peut-être",
        },
        headers=headers["cardiologist"],
    )
    assert bad.status_code == 422
    low = service.ReadingItem(0, patient_uuid, "8480-6", 96, "mm[Hg]", frozen.now - timedelta(minutes=2))
    await service.record_readings(session, network.nurse.principal, [low], ReadingSource.PROFESSIONAL)
    worklist = (await client.get("/api/monitoring/worklist", headers=headers["nurse"])).json()
    assert [(row["enrolment_id"], row["colour"]) for row in worklist] == [(enrolment_id, "orange")]
    alert_id = worklist[0]["alerts"][0]["id"]
    assert (await client.get("/api/monitoring/worklist", headers=headers["cardiologist"])).status_code == 403
    filtered = await client.post(
        f"/api/monitoring/alerts/{alert_id}/filter", json={"note": "Jointe"}, headers=headers["nurse"]
    )
    assert filtered.status_code == 200 and filtered.json()["status"] == "filtered"
    closed = await client.post(
        f"/api/monitoring/alerts/{alert_id}/interpret",
        json={"interpretation": "Hypotension orthostatique", "action": "call"},
        headers=headers["doctor"],
    )
    assert closed.status_code == 200 and closed.json()["action"] == "call"
    view = (
        await client.get(f"/api/monitoring/enrolments/{enrolment_id}", headers=headers["cardiologist"])
    ).json()
    assert view["enrolment"]["colour"] == "green" and view["team_member"] is False
    readings = (
        await client.get(f"/api/monitoring/enrolments/{enrolment_id}/observations", headers=headers["doctor"])
    ).json()
    assert [(r["measure"], r["value"]) for r in readings] == [("systolic", 96.0)]
    for stranger in ("colleague", "outsider"):
        for path in (
            f"/api/monitoring/enrolments/{enrolment_id}",
            f"/api/monitoring/enrolments/{enrolment_id}/observations",
        ):
            assert (await client.get(path, headers=headers[stranger])).status_code == 404, (stranger, path)
        answer = await client.post(
            f"/api/monitoring/alerts/{alert_id}/filter", json={}, headers=headers[stranger]
        )
        assert answer.status_code == 404
        linked = await client.post(
            f"/api/monitoring/alerts/{alert_id}/appointment",
            json={"appointment_id": str(uuid.uuid4())},
            headers=headers[stranger],
        )
        assert linked.status_code == 404
    unknown = await client.post(
        f"/api/monitoring/alerts/{alert_id}/appointment",
        json={"appointment_id": str(uuid.uuid4())},
        headers=headers["nurse"],
    )
    assert unknown.status_code == 404  # no such appointment: the alert stays as it was
    odd = await client.post(
        f"/api/monitoring/alerts/{alert_id}/appointment",
        json={"appointment_id": "x"},
        headers=headers["nurse"],
    )
    assert odd.status_code == 422
    seen = await client.post("/api/monitoring/worklist/green-seen", headers=headers["nurse"])
    assert seen.json() == {"acknowledged": 1}  # green again: its reading is now marked as seen
