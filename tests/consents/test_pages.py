"""Consent pages: scope choice, the notice in force, the decision recorded against it, withdrawal."""

from __future__ import annotations

import html
import re
import uuid

import pytest

from telesante.consents import service as consent_service
from telesante.consents.models import ConsentScopeType
from telesante.consents.schemas import ConsentCreate, InformationTextCreate
from telesante.directory.models import Role
from tests.factories import PASSWORD, make_actor, make_organisation, make_patient
from tests.helpers import csrf_token, login

NOTICE_BODY = "La téléconsultation est une consultation à distance.\nVous pouvez la refuser à tout moment."


def text_of(response) -> str:
    return html.unescape(response.text)


def alert(response) -> str:
    match = re.search(r'role="alert"[^>]*>(.*?)</', response.text, re.S)
    return match.group(1).strip() if match else ""


async def post_form(client, path: str, data: dict, page: str):
    token = await csrf_token(client, page)
    return await client.post(path, data={**data, "csrf_token": token})


@pytest.fixture
async def world(session, client):
    """A treating professional signed in, their patient, and the teleconsultation notice in force."""
    organisation = await make_organisation(session, "CH de Lannion")
    actor = await make_actor(session, organisation, Role.REQUESTER)
    patient = await make_patient(session, actor)
    notice = await consent_service.publish_information_text(
        session,
        None,
        InformationTextCreate(
            scope_type="act",
            scope_code="teleconsultation",
            version="2024-1",
            title="Votre téléconsultation",
            body=NOTICE_BODY,
        ),
    )
    response = await login(client, actor.email, PASSWORD)
    assert response.status_code == 303
    return {"actor": actor, "patient_id": str(patient.id), "notice_id": str(notice.id)}


async def test_choose_scope_then_record_consent_shown_on_record_and_access_log(session, client, world):
    base = f"/patients/{world['patient_id']}"
    record = await client.get(base)
    assert (
        f'href="{base}/consentements/nouveau"' in record.text and "Recueillir un consentement" in record.text
    )

    step1 = await client.get(f"{base}/consentements/nouveau")
    assert step1.status_code == 200
    text = text_of(step1)
    assert "LEFEVRE" in text
    assert f"{base}/consentements/nouveau?scope_type=act&scope_code=teleconsultation" in text
    assert f"{base}/consentements/nouveau?scope_type=act&scope_code=telesoin" in text
    # the monitoring programmes' notices are published by their migration
    assert (
        f"{base}/consentements/nouveau?scope_type=monitoring_programme&scope_code=insuffisance_cardiaque"
        in text
    )

    step2 = await client.get(
        f"{base}/consentements/nouveau", params={"scope_type": "act", "scope_code": "teleconsultation"}
    )
    assert step2.status_code == 200
    text = text_of(step2)
    assert "Votre téléconsultation" in text and NOTICE_BODY in text and "version 2024-1" in text
    assert f'name="information_text_id" value="{world["notice_id"]}"' in text
    assert 'type="radio" id="f-decision-given"' in text

    done = await post_form(
        client,
        f"{base}/consentements/nouveau",
        {
            "scope_type": "act",
            "scope_code": "teleconsultation",
            "information_text_id": world["notice_id"],
            "decision": "given",
            "method": "written",
            "given_by": "patient",
            "comment": "Notice remise en main propre",
        },
        f"{base}/consentements/nouveau?scope_type=act&scope_code=teleconsultation",
    )
    assert done.status_code == 303, alert(done)
    assert done.headers["location"] == f"{base}?fait=consentement#consentements"

    record = await client.get(f"{base}?fait=consentement")
    text = text_of(record)
    assert "Consentement enregistré." in text
    section = text[text.index('id="consentements"') : text.index('id="acces"')]
    assert "Acte de télésanté : Téléconsultation" in section and "Consentement donné" in section
    assert "Écrit — Le patient lui-même" in section and "Notice remise en main propre" in section
    assert "En vigueur" in section and world["actor"].principal.display_name in section
    log = text[text.index('id="acces"') :]
    assert world["actor"].principal.display_name in log and "Consultation" in log and "Consentement" in log


async def test_representative_name_is_required_and_nothing_is_recorded(session, client, world):
    base = f"/patients/{world['patient_id']}"
    step2 = f"{base}/consentements/nouveau?scope_type=act&scope_code=teleconsultation"
    refused = await post_form(
        client,
        f"{base}/consentements/nouveau",
        {
            "scope_type": "act",
            "scope_code": "teleconsultation",
            "information_text_id": world["notice_id"],
            "decision": "given",
            "method": "oral",
            "given_by": "legal_representative",
        },
        step2,
    )
    assert refused.status_code == 422
    assert "Nommez la personne qui s'exprime pour le patient" in text_of(refused)
    assert NOTICE_BODY in text_of(refused)  # the notice stays in front of the user
    assert 'value="legal_representative" selected' in refused.text
    missing = await post_form(
        client,
        f"{base}/consentements/nouveau",
        {"scope_type": "act", "scope_code": "teleconsultation", "information_text_id": world["notice_id"]},
        step2,
    )
    assert missing.status_code == 422 and "Décision : champ obligatoire" in text_of(missing)
    assert (
        await consent_service.list_consents(session, world["actor"].principal, uuid.UUID(world["patient_id"]))
        == []
    )


async def test_scope_without_notice_cannot_be_chosen(session, client, world):
    base = f"/patients/{world['patient_id']}"
    response = await client.get(
        f"{base}/consentements/nouveau",
        params={"scope_type": "monitoring_programme", "scope_code": "insuffisance-cardiaque"},
    )
    assert response.status_code == 422
    assert "Aucune notice d'information n'est en vigueur pour ce périmètre" in text_of(response)
    unknown = await client.get(
        f"{base}/consentements/nouveau", params={"scope_type": "act", "scope_code": "magie"}
    )
    assert unknown.status_code == 422 and "Acte inconnu « magie »" in text_of(unknown)


async def test_withdraw_a_consent(session, client, world):
    principal, patient_id = world["actor"].principal, uuid.UUID(world["patient_id"])
    consent = await consent_service.record_consent(
        session,
        principal,
        patient_id,
        ConsentCreate(
            scope_type=ConsentScopeType.ACT,
            scope_code="teleconsultation",
            decision="given",
            information_text_id=world["notice_id"],
        ),
    )
    base = f"/patients/{patient_id}"
    path = f"{base}/consentements/{consent.id}/retrait"
    record = await client.get(base)
    assert f'action="{path}"' in record.text and f'id="retrait-{consent.id}"' in record.text

    short = await post_form(client, path, {"reason": "x"}, base)
    assert short.status_code == 422 and "Motif du retrait : trop court" in text_of(short)
    done = await post_form(client, path, {"reason": "Le patient ne souhaite plus de téléconsultation"}, path)
    assert done.status_code == 303, alert(done)
    text = text_of(await client.get(f"{base}?fait=retrait"))
    assert "Consentement retiré." in text
    assert "Retiré</strong> le" in text and "Le patient ne souhaite plus de téléconsultation" in text
    again = await client.get(path)
    assert "Ce consentement a déjà été retiré" in text_of(again)
    twice = await post_form(client, path, {"reason": "encore"}, base)
    assert twice.status_code == 409 and "déjà été retiré" in text_of(twice)


async def test_consent_pages_are_404_for_a_colleague_elsewhere(session, client, world):
    patient_id = world["patient_id"]
    colleague = await make_actor(session, await make_organisation(session, "CH de Redon"), Role.REQUESTER)
    client.cookies.clear()
    await login(client, colleague.email, PASSWORD)
    new = await client.get(f"/patients/{patient_id}/consentements/nouveau")
    assert new.status_code == 404 and "LEFEVRE" not in new.text
    posted = await post_form(
        client,
        f"/patients/{patient_id}/consentements/nouveau",
        {
            "scope_type": "act",
            "scope_code": "teleconsultation",
            "information_text_id": world["notice_id"],
            "decision": "given",
        },
        "/patients",
    )
    assert posted.status_code == 404 and "LEFEVRE" not in posted.text
