from telesante.directory.models import Role
from tests.factories import make_actor, make_organisation, make_patient, token_for


async def test_register_then_read_through_api(session, client):
    org = await make_organisation(session)
    actor = await make_actor(session, org, Role.REQUESTER)
    patient = await make_patient(session, actor)
    headers = await token_for(session, actor)
    response = await client.get(f"/api/patients/{patient.id}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["birth_family_name"] == "LEFEVRE"
    assert response.json()["identity_status"] == "provisoire"
