"""JSON API of the registry: registering a matricule INS the platform already holds, with three actors."""

from __future__ import annotations

from datetime import date

import pytest

from telesante.directory.models import Role
from telesante.patients import service as patient_service
from tests.factories import make_actor, make_organisation, make_patient, token_for, valid_nir

NIR = valid_nir("F", date(1954, 3, 12))
# The stored identity's traits, typed by another hospital (accents and case as it likes).
SAME_TRAITS = {
    "birth_family_name": "Lefevre",
    "birth_given_names": "Elodie Marie",
    "birth_date": "1954-03-12",
    "sex": "F",
    "birth_place_insee": "35238",
    "ins_matricule": NIR,
}


@pytest.fixture
async def registered(session):
    """A's patient with an INS, and hospital B's clinician, who cannot see it yet."""
    hospital_a = await make_organisation(session, "CH de Fougères")
    treating = await make_actor(session, hospital_a, Role.REQUESTER)
    patient = await make_patient(session, treating, ins_matricule=NIR)
    colleague = await make_actor(session, await make_organisation(session, "CH de Vitré"), Role.EXPERT)
    return str(patient.id), treating, colleague


async def test_hospital_b_attaches_the_existing_identity_then_reads_it(session, client, registered):
    patient_id, _, colleague = registered
    headers = await token_for(session, colleague)
    assert (await client.get(f"/api/patients/{patient_id}", headers=headers)).status_code == 404

    response = await client.post("/api/patients", headers=headers, json={**SAME_TRAITS, "ipp": "VIT-7"})
    assert response.status_code == 200, response.text  # 200: nothing created, an existing identity returned
    body = response.json()
    assert body["patient"]["id"] == patient_id and body["warnings"] == [patient_service.ATTACHED_BY_INS]

    record = await client.get(f"/api/patients/{patient_id}", headers=headers)
    assert record.status_code == 200 and "VIT-7" in [i["value"] for i in record.json()["local_identifiers"]]
    relations = await client.get(f"/api/patients/{patient_id}/care-relationships", headers=headers)
    assert len(relations.json()) == 2

    again = await client.post("/api/patients", headers=headers, json={**SAME_TRAITS, "ipp": "VIT-7"})
    assert again.status_code == 200 and again.json()["warnings"] == [patient_service.ALREADY_FOLLOWED_BY_INS]
    relations = await client.get(f"/api/patients/{patient_id}/care-relationships", headers=headers)
    assert len(relations.json()) == 2


async def test_other_traits_get_a_409_that_reveals_nothing(session, client, registered):
    patient_id, _, colleague = registered
    headers = await token_for(session, colleague)
    response = await client.post(
        "/api/patients", headers=headers, json={**SAME_TRAITS, "birth_family_name": "Martin"}
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["field"] == "ins_matricule" and "identitovigilance" in problem["detail"]
    assert (
        "LEFEVRE" not in response.text and "ELODIE" not in response.text and patient_id not in response.text
    )
    assert (await client.get(f"/api/patients/{patient_id}", headers=headers)).status_code == 404


async def test_an_outsider_is_refused(session, client, registered):
    patient_id, _, _ = registered
    outsider = await make_actor(session, None, Role.EVALUATOR)
    headers = await token_for(session, outsider)
    response = await client.post("/api/patients", headers=headers, json=SAME_TRAITS)
    assert response.status_code == 403 and patient_id not in response.text


async def test_a_new_patient_is_still_a_201(session, client, registered):
    _, treating, _ = registered
    headers = await token_for(session, treating)
    body = {
        **SAME_TRAITS,
        "birth_family_name": "Le Goff",
        "ins_matricule": valid_nir("F", date(1954, 3, 12), order=2),
    }
    response = await client.post("/api/patients", headers=headers, json=body)
    assert response.status_code == 201 and response.json()["warnings"] == []


@pytest.mark.parametrize(
    ("birth_date", "said"), [("0001-01-01", "avant 1880"), ("9999-12-31", "dans le futur")]
)
async def test_a_birth_date_out_of_any_calendar_gets_the_domain_s_own_refusal(
    session, client, registered, birth_date, said
):
    """Input models bound every date to kit.schemas' years, after the fields' own rules: the birth date's rule (not
    before 1880, not in the future) speaks first. Nothing is stored."""
    _, treating, _ = registered
    headers = await token_for(session, treating)
    body = {**SAME_TRAITS, "birth_family_name": "Le Goff", "birth_date": birth_date}
    body.pop("ins_matricule")
    response = await client.post("/api/patients", headers=headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "birth_date" and said in response.text
    listed = await client.get("/api/patients", headers=headers)
    assert listed.status_code == 200
    assert [p for p in listed.json()["items"] if p["birth_family_name"].upper() == "LE GOFF"] == []
