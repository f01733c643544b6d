"""Patient pages: search, registration (bad input, duplicates), the record and its forms, emergency access,
and the three-actor walk over every page that takes a patient id."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pyotp
import pytest

from telesante.directory.models import Role
from telesante.kit import clock
from telesante.kit.pagination import PageRequest
from telesante.patients import service as patient_service
from telesante.patients.repository import PatientCriteria
from tests.factories import PASSWORD, make_actor, make_organisation, make_patient, valid_nir
from tests.helpers import csrf_token, login

NIR = valid_nir("F", date(1954, 3, 12))
NEW_PATIENT = {
    "birth_family_name": "Le Goff",
    "birth_given_names": "Anne Soizic",
    "birth_date": "1961-07-02",
    "sex": "F",
    "birth_place_insee": "29019",
    "phone": "02 98 00 00 00",
}


async def sign_in(client, actor, totp_secret: str | None = None) -> None:
    """Through the real login form (and the second factor for administrators)."""
    response = await login(client, actor.email, PASSWORD)
    assert response.status_code == 303, response.text
    if totp_secret:
        token = await csrf_token(client, "/connexion/code")
        response = await client.post(
            "/connexion/code", data={"code": pyotp.TOTP(totp_secret).now(), "csrf_token": token}
        )
        assert response.status_code == 303, response.text


async def post_form(client, path: str, data: dict, page: str | None = None):
    """POST like a browser: take the CSRF token from the page holding the form."""
    token = await csrf_token(client, page or path)
    return await client.post(path, data={**data, "csrf_token": token})


def text_of(response) -> str:
    """The page's text with HTML entities decoded (Jinja escapes apostrophes in values)."""
    return html.unescape(response.text)


def alert(response) -> str:
    """The form's error message, for assertion messages."""
    match = re.search(r'role="alert"[^>]*>(.*?)</', response.text, re.S)
    return match.group(1).strip() if match else ""


async def count_patients(session, principal, family: str) -> int:
    page = await patient_service.search_patients(
        session, principal, PatientCriteria(family=family), PageRequest()
    )
    return page.total


@pytest.fixture
async def treating(session):
    organisation = await make_organisation(session, "CH de Saint-Brieuc")
    return await make_actor(session, organisation, Role.REQUESTER)


# --- search ------------------------------------------------------------------------------------------------


async def test_search_is_accent_and_case_insensitive(session, client, treating):
    patient = await make_patient(session, treating)  # Lefèvre Élodie Marie
    patient_id = str(patient.id)
    await sign_in(client, treating)

    empty = await client.get("/patients")
    assert empty.status_code == 200 and "Saisissez au moins un critère" in empty.text

    for query in (
        {"nom": "lefevre"},
        {"nom": "LEFÈV", "prenom": "élo"},
        {"prenom": "marie"},
        {"naissance": "1954-03-12", "sexe": "F"},
    ):
        response = await client.get("/patients", params=query)
        assert response.status_code == 200
        assert f'href="/patients/{patient_id}"' in response.text, query
        assert "badge badge-provisoire" in response.text

    miss = await client.get("/patients", params={"nom": "lefevre", "sexe": "M"})
    assert f"/patients/{patient_id}" not in miss.text and "0 patient trouvé" in miss.text


async def test_live_search_returns_only_the_results_fragment(session, client, treating):
    await make_patient(session, treating)
    await sign_in(client, treating)
    response = await client.get("/patients", params={"nom": "lef"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text and "LEFEVRE" in response.text
    assert response.headers["vary"] == "HX-Request"
    full = await client.get("/patients", params={"nom": "lef"})
    assert "<html" in full.text and 'hx-get="/patients"' in full.text and "LEFEVRE" in full.text


async def test_search_with_a_malformed_date_names_the_field(session, client, treating):
    await sign_in(client, treating)
    response = await client.get("/patients", params={"naissance": "12/03/1954"})
    assert response.status_code == 422
    assert "Date de naissance : date attendue au format AAAA-MM-JJ" in response.text
    assert 'id="f-naissance"' in response.text and 'aria-invalid="true"' in response.text


# --- registration ------------------------------------------------------------------------------------------


async def test_registration_creates_the_patient_and_shows_the_record(session, client, treating):
    await sign_in(client, treating)
    form = await client.get("/patients/nouveau")
    assert form.status_code == 200 and 'name="organisation_id"' not in form.text  # one organisation only
    response = await post_form(client, "/patients/nouveau", {**NEW_PATIENT, "ipp": "IPP-0042"})
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/patients/[0-9a-f-]{36}\?cree=1", location)

    record = await client.get(location)
    assert record.status_code == 200
    text = text_of(record)
    assert "LE GOFF" in text and "ANNE SOIZIC" in text and "02/07/1961" in text
    assert "Identité provisoire" in text and "Création de l'identité" in text
    assert "Brest (29019)" in text  # birth place named from the INSEE code
    assert "IPP-0042" in text and "CH de Saint-Brieuc" in text
    assert "Patient enregistré avec une identité provisoire." in text
    assert "Qui a consulté ce dossier" in text and treating.principal.display_name in text
    assert "Création" in text and "Consultation" in text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("birth_date", "future", "Date de naissance : La date de naissance ne peut pas être dans le futur."),
        (
            "ins_matricule",
            NIR[:13] + f"{(int(NIR[13:]) + 1) % 100:02d}",
            "Matricule INS : La clé du matricule INS est incorrecte.",
        ),
        (
            "birth_place_insee",
            "75999",
            "Code INSEE du lieu de naissance : Le code INSEE 75999 ne correspond à aucune commune",
        ),
        (
            "birth_place_insee",
            "00000",
            "Code INSEE du lieu de naissance : Le code INSEE ne correspond à aucun département.",
        ),
        ("birth_family_name", "", "Nom de naissance : champ obligatoire"),
        ("email", "pas-une-adresse", "Adresse électronique : "),
    ],
)
async def test_registration_bad_input_names_the_field_and_creates_nothing(
    session, client, treating, field, value, message
):
    principal = treating.principal
    await sign_in(client, treating)
    if value == "future":
        value = (clock.now() + timedelta(days=30)).date().isoformat()
    data = {**NEW_PATIENT, "birth_date": "1954-03-12", "birth_family_name": "Dupont", field: value}
    response = await post_form(client, "/patients/nouveau", data)
    assert response.status_code == 422, alert(response)
    assert message in text_of(response), alert(response)
    assert f'id="f-{field}"' in response.text
    assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', response.text, re.S)
    assert 'value="Anne Soizic"' in response.text  # what was typed is kept
    assert await count_patients(session, principal, "Dupont") == 0


async def test_probable_duplicate_is_announced_then_confirmed(session, client, treating):
    principal = treating.principal
    existing = await make_patient(session, treating)
    existing_id = str(existing.id)
    await sign_in(client, treating)
    same = {
        "birth_family_name": "LEFEVRE",
        "birth_given_names": "Elodie",
        "birth_date": "1954-03-12",
        "sex": "F",
        "birth_place_insee": "35238",
    }
    warned = await post_form(client, "/patients/nouveau", same)
    assert warned.status_code == 409
    assert "Doublon probable" in warned.text
    assert f'href="/patients/{existing_id}"' in warned.text
    assert 'name="confirm_duplicate"' in warned.text and "Créer malgré le doublon probable" in warned.text
    assert await count_patients(session, principal, "Lefevre") == 1

    confirmed = await post_form(
        client, "/patients/nouveau", {**same, "confirm_duplicate": "on"}, "/patients/nouveau"
    )
    assert confirmed.status_code == 303 and confirmed.headers["location"].endswith("?cree=doublon")
    assert await count_patients(session, principal, "Lefevre") == 2


async def test_duplicate_outside_scope_is_announced_without_its_id(session, client, treating):
    elsewhere = await make_actor(session, await make_organisation(session, "CH de Redon"), Role.REQUESTER)
    other = await make_patient(session, elsewhere)
    other_id = str(other.id)
    await sign_in(client, treating)
    warned = await post_form(
        client,
        "/patients/nouveau",
        {
            "birth_family_name": "Lefevre",
            "birth_given_names": "Elodie",
            "birth_date": "1954-03-12",
            "sex": "F",
            "birth_place_insee": "35238",
        },
    )
    assert warned.status_code == 409
    assert "Patient enregistré dans un autre établissement" in warned.text
    assert other_id not in warned.text


async def test_several_organisations_must_choose_where_to_register(session, client):
    first, second = (
        await make_organisation(session, "MSP de Lamballe"),
        await make_organisation(session, "CH de Dinan"),
    )
    actor = await make_actor(session, first, Role.REQUESTER)
    from telesante.directory import service as directory_service
    from telesante.directory.schemas import MembershipCreate

    await directory_service.add_membership(
        session,
        None,
        MembershipCreate(professional_id=actor.professional.id, organisation_id=second.id, role=Role.EXPERT),
    )
    second_id = str(second.id)
    await sign_in(client, actor)
    form = await client.get("/patients/nouveau")
    assert (
        'name="organisation_id"' in form.text
        and "MSP de Lamballe" in form.text
        and "CH de Dinan" in form.text
    )
    missing = await post_form(client, "/patients/nouveau", NEW_PATIENT)
    assert missing.status_code == 422 and "Précisez l'établissement d'enregistrement." in text_of(missing)
    done = await post_form(client, "/patients/nouveau", {**NEW_PATIENT, "organisation_id": second_id})
    assert done.status_code == 303
    record = await client.get(done.headers["location"])
    assert "CH de Dinan" in record.text


async def test_post_without_csrf_token_is_refused(session, client, treating):
    principal = treating.principal
    await sign_in(client, treating)
    response = await client.post("/patients/nouveau", data=NEW_PATIENT)
    assert response.status_code == 403 and "CSRF" in response.text
    assert await count_patients(session, principal, "Le Goff") == 0


async def test_anonymous_visitor_is_sent_to_login(client):
    response = await client.get("/patients?nom=lefevre")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/connexion?suite=/patients")


# --- the record's forms ------------------------------------------------------------------------------------


async def test_record_forms_change_status_contact_traits_and_ipp(session, client, treating):
    patient = await make_patient(session, treating)
    base = f"/patients/{patient.id}"
    await sign_in(client, treating)

    record = await client.get(base)
    for action in ("/statut", "/coordonnees", "/ipp", "/consentements/nouveau", "/traits"):
        assert f'{base}{action}"' in record.text, action

    short = await post_form(
        client, f"{base}/statut", {"status": "validee", "evidence": "cni", "reason": "x"}, base
    )
    assert short.status_code == 422 and "Motif : trop court" in short.text
    assert "LEFEVRE" not in short.text  # an error re-render shows no patient data (it is rolled back)
    refused = await post_form(
        client, f"{base}/statut", {"status": "validee", "evidence": "aucun", "reason": "contrôle"}, base
    )
    assert refused.status_code == 422 and "haut niveau de confiance" in refused.text

    validated = await post_form(
        client, f"{base}/statut", {"status": "validee", "evidence": "cni", "reason": "CNI présentée"}, base
    )
    assert validated.status_code == 303
    record = await client.get(validated.headers["location"])
    assert "badge badge-validee" in record.text and "CNI présentée" in record.text
    assert "Carte nationale d'identité" in text_of(record)

    contact = await post_form(
        client,
        f"{base}/coordonnees",
        {"phone": "06 12 34 56 78", "city": "Rennes", "used_family_name": "Martin"},
        base,
    )
    assert contact.status_code == 303, alert(contact)
    bad_contact = await post_form(client, f"{base}/coordonnees", {"postal_code": "350"}, base)
    assert bad_contact.status_code == 422 and "Code postal" in bad_contact.text

    organisation_id = str(next(iter(treating.principal.clinical_organisation_ids)))
    ipp_form = await client.get(f"{base}/ipp")
    assert f'name="organisation_id" value="{organisation_id}"' in ipp_form.text  # the only one: preset
    ipp = await post_form(
        client, f"{base}/ipp", {"organisation_id": organisation_id, "value": "IPP-77"}, base
    )
    assert ipp.status_code == 303, alert(ipp)

    traits_page = await client.get(f"{base}/traits")
    assert 'value="LEFEVRE"' in traits_page.text and "provisoire" in traits_page.text
    corrected = await post_form(
        client,
        f"{base}/traits",
        {
            "birth_family_name": "Lefebvre",
            "birth_given_names": "Elodie Marie",
            "birth_date": "1954-03-12",
            "sex": "F",
            "birth_place_insee": "35238",
            "reason": "erreur de saisie",
        },
        f"{base}/traits",
    )
    assert corrected.status_code == 303, alert(corrected)

    # Tests share one session: forget the collections that earlier requests loaded.
    session.expire_all()
    record = await client.get(base)
    text = text_of(record)
    assert "06 12 34 56 78" in text and "MARTIN" in text
    assert "IPP-77" in text
    assert "LEFEBVRE" in text and "badge badge-provisoire" in text  # traits corrected: back to provisoire
    assert "Traits modifiés (birth_family_name) : erreur de saisie" in text
    assert "Modification" in text  # the access log shows the changes


async def test_access_log_has_its_own_paginated_page(session, client, treating):
    patient = await make_patient(session, treating)
    base = f"/patients/{patient.id}"
    await sign_in(client, treating)
    first = await client.get(base)
    assert f'href="{base}/acces"' not in first.text  # everything fits in the record's preview
    for _ in range(26):  # each view of the record adds two rows (the record, its access log)
        await client.get(base)
    record = await client.get(base)
    assert f'href="{base}/acces"' in record.text
    assert record.text.count("<time datetime=") == 20
    full = await client.get(f"{base}/acces")
    assert full.status_code == 200 and "Qui a consulté ce dossier" in full.text
    assert full.text.count("<time datetime=") == 50 and "Suivants" in full.text
    assert re.search(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}", full.text)  # Paris time, with seconds
    assert "Journal des accès" in full.text and "Dossier patient" in full.text
    rest = await client.get(f"{base}/acces", params={"offset": 50})
    assert rest.status_code == 200 and "Précédents" in rest.text


# --- emergency access --------------------------------------------------------------------------------------


async def test_break_glass_opens_the_record_with_a_banner_and_is_reviewed(session, client, treating):
    patient = await make_patient(session, treating, ins_matricule=NIR)
    patient_id = str(patient.id)
    emergency = await make_actor(session, await make_organisation(session, "CHU de Rennes"), Role.REQUESTER)
    admin = await make_actor(session, None, Role.REGIONAL_ADMIN, totp=True)
    secret = admin.account.totp_secret
    await sign_in(client, emergency)
    assert (await client.get(f"/patients/{patient_id}")).status_code == 404

    short = await post_form(client, "/acces-urgence", {"reason": "urgence", "ins_matricule": NIR})
    assert short.status_code == 422 and "Motif : trop court" in short.text
    unknown = await post_form(
        client,
        "/acces-urgence",
        {
            "reason": "Patient inconscient admis au SAU",
            "birth_family_name": "Inconnu",
            "first_given_name": "Jean",
            "birth_date": "1950-01-01",
        },
    )
    assert unknown.status_code == 404 and "Aucun patient ne correspond" in unknown.text

    opened = await post_form(
        client, "/acces-urgence", {"reason": "Patient inconscient admis au SAU", "ins_matricule": NIR}
    )
    assert opened.status_code == 303 and opened.headers["location"] == f"/patients/{patient_id}"
    record = await client.get(f"/patients/{patient_id}")
    assert record.status_code == 200
    assert "Accès d'urgence — tracé et soumis à revue" in text_of(record)
    assert "badge badge-glass" in record.text and "row-glass" in record.text

    client.cookies.clear()
    await sign_in(client, admin, secret)
    review = await client.get("/admin/acces-urgence")
    assert review.status_code == 200 and "Patient inconscient admis au SAU" in review.text
    assert emergency.email in review.text
    grant = re.search(r'action="/admin/acces-urgence/([0-9a-f-]{36})/revue"', review.text).group(1)
    empty = await post_form(
        client, f"/admin/acces-urgence/{grant}/revue", {"comment": ""}, "/admin/acces-urgence"
    )
    assert empty.status_code == 422 and "Commentaire de revue : champ obligatoire" in empty.text
    done = await post_form(
        client, f"/admin/acces-urgence/{grant}/revue", {"comment": "Justifié (SAU)"}, "/admin/acces-urgence"
    )
    assert done.status_code == 303
    assert "Aucun accès d'urgence en attente de revue" in text_of(await client.get("/admin/acces-urgence"))


async def test_break_glass_review_is_for_the_regional_administrator(session, client, treating):
    await sign_in(client, treating)
    assert (await client.get("/admin/acces-urgence")).status_code == 403


async def test_break_glass_on_shared_traits_asks_for_the_ins(session, client, treating):
    """Two identities share the traits: no grant at all, the clinician must identify the patient by INS."""
    first = await make_patient(session, treating)
    second = await make_patient(session, treating, confirm_duplicate=True, birth_place_insee="29019")
    ids = [first.id, second.id]  # requests that roll back expire ORM objects held by the test
    emergency = await make_actor(session, await make_organisation(session, "CHU de Rennes"), Role.EXPERT)
    await sign_in(client, emergency)
    refused = await post_form(
        client,
        "/acces-urgence",
        {
            "reason": "Patiente confuse aux urgences, antécédents inconnus",
            "birth_family_name": "Lefèvre",
            "first_given_name": "Elodie",
            "birth_date": "1954-03-12",
        },
    )
    assert refused.status_code == 422 and "matricule INS" in refused.text
    for patient_id in ids:
        assert (await client.get(f"/patients/{patient_id}")).status_code == 404


async def test_break_glass_is_for_clinicians(session, client):
    outsider = await make_actor(session, None, Role.EVALUATOR)
    await sign_in(client, outsider)
    form = await client.get("/acces-urgence")
    assert form.status_code == 200 and "réservé aux professionnels de santé" in form.text
    refused = await post_form(
        client, "/acces-urgence", {"reason": "Je veux voir ce dossier absolument", "ins_matricule": NIR}, "/"
    )
    assert refused.status_code == 403


# --- registering a matricule INS the platform already holds ------------------------------------------------


async def test_registering_a_known_ins_attaches_the_identity_or_refuses_without_revealing_it(
    session, client, treating
):
    existing = await make_patient(
        session, treating, ins_matricule=NIR
    )  # Lefèvre Élodie Marie, at Saint-Brieuc
    existing_id = str(existing.id)
    colleague = await make_actor(session, await make_organisation(session, "CH de Lannion"), Role.EXPERT)
    outsider = await make_actor(session, None, Role.EVALUATOR)
    typed = {
        "birth_family_name": "Lefèvre",
        "birth_given_names": "élodie marie",
        "birth_date": "1954-03-12",
        "sex": "F",
        "birth_place_insee": "35238",
        "ins_matricule": NIR,
        "ipp": "LAN-3",
    }

    await sign_in(client, outsider)
    refused = await post_form(client, "/patients/nouveau", typed)
    assert refused.status_code == 403 and existing_id not in refused.text
    await client.post("/deconnexion", data={"csrf_token": await csrf_token(client, "/")})

    await sign_in(client, colleague)
    assert (await client.get(f"/patients/{existing_id}")).status_code == 404
    wrong = await post_form(client, "/patients/nouveau", {**typed, "birth_family_name": "Martin"})
    assert wrong.status_code == 409, alert(wrong)
    assert "Ce matricule INS appartient à un patient de la plateforme" in text_of(wrong)
    assert "identitovigilance" in alert(wrong)
    assert "LEFEVRE" not in wrong.text and "Lefèvre" not in text_of(wrong) and existing_id not in wrong.text
    assert (await client.get(f"/patients/{existing_id}")).status_code == 404

    attached = await post_form(client, "/patients/nouveau", typed)
    assert attached.status_code == 303, alert(attached)
    assert attached.headers["location"] == f"/patients/{existing_id}?cree=ins"
    record = await client.get(attached.headers["location"])
    assert record.status_code == 200
    text = text_of(record)
    assert "Identité existante rattachée à votre établissement (INS)." in text
    assert "CH de Lannion" in text and "CH de Saint-Brieuc" in text and "LAN-3" in text

    again = await post_form(client, "/patients/nouveau", typed, "/patients/nouveau")
    assert again.headers["location"] == f"/patients/{existing_id}?cree=suivi"
    assert "déjà suivi dans votre établissement" in text_of(await client.get(again.headers["location"]))
