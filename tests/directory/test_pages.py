"""Directory pages: organisations and professionals for every signed-in user, forms for administrators."""

from __future__ import annotations

import html
import re

import pyotp

from telesante.directory import service as directory_service
from telesante.directory.models import OrganisationType, Role, ServiceType
from telesante.directory.schemas import ServiceCreate
from telesante.kit.pagination import PageRequest
from tests.factories import PASSWORD, make_actor, make_organisation, valid_finess, valid_rpps
from tests.helpers import csrf_token, login


def text_of(response) -> str:
    return html.unescape(response.text)


def alert(response) -> str:
    match = re.search(r'role="alert"[^>]*>(.*?)</', response.text, re.S)
    return match.group(1).strip() if match else ""


async def sign_in(client, actor, totp_secret: str | None = None) -> None:
    response = await login(client, actor.email, PASSWORD)
    assert response.status_code == 303, response.text
    if totp_secret:
        token = await csrf_token(client, "/connexion/code")
        response = await client.post(
            "/connexion/code", data={"code": pyotp.TOTP(totp_secret).now(), "csrf_token": token}
        )
        assert response.status_code == 303, response.text


async def post_form(client, path: str, data: dict, page: str):
    token = await csrf_token(client, page)
    return await client.post(path, data={**data, "csrf_token": token})


async def test_organisations_are_listed_filtered_and_shown(session, client):
    chu = await make_organisation(
        session,
        "CHU de Brest",
        type=OrganisationType.CHU,
        commune_insee="29019",
        city="Brest",
        postal_code="29200",
    )
    await make_organisation(session, "EHPAD Les Genêts", type=OrganisationType.EHPAD)
    await directory_service.add_service(
        session, None, chu.id, ServiceCreate(type=ServiceType.UNV, name="UNV Brest")
    )
    actor = await make_actor(session, chu, Role.EXPERT)
    chu_id, finess, display = str(chu.id), chu.finess, actor.professional.display_name
    await sign_in(client, actor)

    listing = await client.get("/annuaire/etablissements")
    assert listing.status_code == 200
    assert "CHU de Brest" in listing.text and "EHPAD Les Genêts" in listing.text and finess in listing.text

    by_type = await client.get("/annuaire/etablissements", params={"type": "chu"})
    assert "CHU de Brest" in by_type.text and "EHPAD Les Genêts" not in by_type.text
    by_name = await client.get("/annuaire/etablissements", params={"q": "brest", "departement": "29"})
    assert "CHU de Brest" in by_name.text and "EHPAD Les Genêts" not in by_name.text
    by_departement = await client.get("/annuaire/etablissements", params={"departement": "35"})
    assert "CHU de Brest" not in by_departement.text and "EHPAD Les Genêts" in by_departement.text
    partial = await client.get(
        "/annuaire/etablissements", params={"q": "brest"}, headers={"HX-Request": "true"}
    )
    assert "<html" not in partial.text and "CHU de Brest" in partial.text
    bad = await client.get("/annuaire/etablissements", params={"type": "hopital"})
    assert bad.status_code == 422 and "Type : valeur inconnue." in text_of(bad)

    detail = await client.get(f"/annuaire/etablissements/{chu_id}")
    assert detail.status_code == 200
    text = text_of(detail)
    assert "Centre hospitalier universitaire" in text and finess in text and "29019" in text
    assert "UNV Brest" in text and "Unité neurovasculaire (UNV)" in text
    assert display in text and "Expert requis" in text
    assert "Ajouter un service" not in text  # not an administrator of this organisation


async def test_professionals_are_listed_and_shown_with_rpps_idnps_and_memberships(session, client):
    organisation = await make_organisation(session, "CH de Morlaix")
    actor = await make_actor(session, organisation, Role.REQUESTER)
    professional = actor.professional
    pro_id, rpps, family = str(professional.id), professional.rpps, professional.family_name
    await sign_in(client, actor)

    listing = await client.get("/annuaire/professionnels", params={"q": family.lower()})
    assert listing.status_code == 200 and f"/annuaire/professionnels/{pro_id}" in listing.text
    assert rpps in listing.text and "8" + rpps in listing.text
    by_rpps = await client.get("/annuaire/professionnels", params={"q": rpps})
    assert f"/annuaire/professionnels/{pro_id}" in by_rpps.text
    pharmacists = await client.get(
        "/annuaire/professionnels", params={"profession": "pharmacien", "q": family}
    )
    assert f"/annuaire/professionnels/{pro_id}" not in pharmacists.text

    detail = await client.get(f"/annuaire/professionnels/{pro_id}")
    text = text_of(detail)
    assert detail.status_code == 200 and rpps in text and "8" + rpps in text and "Médecin" in text
    assert "CH de Morlaix" in text and "Professionnel requérant" in text and "actif" in text
    assert "Mettre fin" not in text and "Ajouter un rattachement" not in text  # not an administrator


async def test_admin_forms_refuse_a_non_admin(session, client):
    organisation = await make_organisation(session, "CH de Quimperlé")
    actor = await make_actor(session, organisation, Role.REQUESTER)
    org_id, pro_id = str(organisation.id), str(actor.professional.id)
    await sign_in(client, actor)

    for path in ("/annuaire/etablissements/nouveau", "/annuaire/professionnels/nouveau"):
        response = await client.get(path)
        assert response.status_code == 403 and "Accès refusé" in text_of(response), path
    attempts = [
        (
            "/annuaire/etablissements/nouveau",
            {
                "finess": valid_finess(9001),
                "name": "Clinique pirate",
                "type": "clinique",
                "commune_insee": "35238",
            },
        ),
        (
            "/annuaire/professionnels/nouveau",
            {"profession": "infirmier", "family_name": "Pirate", "given_name": "Jo"},
        ),
        (f"/annuaire/etablissements/{org_id}/services", {"type": "urgences", "name": "Urgences pirates"}),
        (
            f"/annuaire/professionnels/{pro_id}/rattachements",
            {"organisation_id": org_id, "role": "org_admin"},
        ),
    ]
    for path, data in attempts:
        response = await post_form(client, path, data, "/annuaire/etablissements")
        assert response.status_code == 403, (path, response.status_code, alert(response))
        assert "Réservé" in text_of(response)
    page = await directory_service.list_organisations(session, PageRequest(), query="pirate")
    assert page.total == 0


async def test_post_without_csrf_token_is_refused(session, client):
    organisation = await make_organisation(session, "CH de Paimpol")
    actor = await make_actor(session, organisation, Role.ORG_ADMIN, totp=True)
    org_id, secret = str(organisation.id), actor.account.totp_secret
    await sign_in(client, actor, secret)
    response = await client.post(
        f"/annuaire/etablissements/{org_id}/services", data={"type": "urgences", "name": "Urgences"}
    )
    assert response.status_code == 403 and "CSRF" in response.text


async def test_regional_admin_registers_an_organisation(session, client):
    admin = await make_actor(session, None, Role.REGIONAL_ADMIN, totp=True)
    await sign_in(client, admin, admin.account.totp_secret)
    form = await client.get("/annuaire/etablissements/nouveau")
    assert form.status_code == 200 and 'name="finess"' in form.text
    data = {
        "finess": valid_finess(4242, "29"),
        "name": "Clinique de l'Odet",
        "type": "clinique",
        "commune_insee": "29232",
        "city": "Quimper",
        "postal_code": "29000",
    }

    bad_key = await post_form(
        client,
        "/annuaire/etablissements/nouveau",
        {**data, "finess": data["finess"][:8] + str((int(data["finess"][8]) + 1) % 10)},
        "/annuaire/etablissements/nouveau",
    )
    assert bad_key.status_code == 422
    assert "Numéro FINESS : La clé du numéro FINESS est incorrecte." in text_of(bad_key)
    assert re.search(r'id="f-finess"[^>]*aria-invalid="true"', bad_key.text, re.S)
    assert 'value="Clinique de l&#39;Odet"' in bad_key.text
    abroad = await post_form(
        client,
        "/annuaire/etablissements/nouveau",
        {**data, "commune_insee": "99134"},
        "/annuaire/etablissements/nouveau",
    )
    assert abroad.status_code == 422 and "Code INSEE de la commune : Une commune française" in text_of(abroad)

    created = await post_form(
        client, "/annuaire/etablissements/nouveau", data, "/annuaire/etablissements/nouveau"
    )
    assert created.status_code == 303, alert(created)
    detail = await client.get(created.headers["location"])
    text = text_of(detail)
    assert "Établissement enregistré." in text and "Clinique de l'Odet" in text and data["finess"] in text
    assert "(département 29)" in text

    duplicate = await post_form(
        client, "/annuaire/etablissements/nouveau", data, "/annuaire/etablissements/nouveau"
    )
    assert duplicate.status_code == 409 and "déjà le numéro FINESS" in text_of(duplicate)


async def test_org_admin_adds_service_professional_and_membership_then_ends_it(session, client):
    organisation = await make_organisation(session, "CH de Carhaix")
    admin = await make_actor(session, organisation, Role.ORG_ADMIN, totp=True)
    org_id, secret = str(organisation.id), admin.account.totp_secret
    await sign_in(client, admin, secret)
    org_page = f"/annuaire/etablissements/{org_id}"

    page = await client.get(org_page)
    assert "Ajouter un service" in page.text
    service = await post_form(
        client, f"{org_page}/services", {"type": "urgences", "name": "Urgences adultes"}, org_page
    )
    assert service.status_code == 303, alert(service)
    again = await post_form(
        client, f"{org_page}/services", {"type": "urgences", "name": "Urgences adultes"}, org_page
    )
    assert again.status_code == 409 and "Un service porte déjà ce nom" in text_of(again)
    assert '<details class="card" open>' in again.text  # the form stays open on its error

    rpps = valid_rpps(777)
    bad = await post_form(
        client,
        "/annuaire/professionnels/nouveau",
        {"profession": "medecin", "family_name": "Kerlo", "given_name": "Yann"},
        "/annuaire/professionnels/nouveau",
    )
    assert bad.status_code == 422 and "Le numéro RPPS est obligatoire pour cette profession." in text_of(bad)
    created = await post_form(
        client,
        "/annuaire/professionnels/nouveau",
        {
            "profession": "medecin",
            "family_name": "Kerlo",
            "given_name": "Yann",
            "rpps": rpps,
            "specialty": "Médecine d'urgence",
        },
        "/annuaire/professionnels/nouveau",
    )
    assert created.status_code == 303, alert(created)
    pro_page = created.headers["location"].split("?")[0]
    text = text_of(await client.get(pro_page))
    assert (
        "Dr Yann KERLO" in text and rpps in text and "8" + rpps in text and "Ajouter un rattachement" in text
    )

    # Step 1 picks the organisation (plain GET, or htmx swapping the section), step 2 shows its services.
    step = await client.get(pro_page, params={"etablissement": org_id})
    assert 'name="service_id"' in step.text and "Urgences adultes" in step.text
    service_id = re.search(
        r'<option value="([0-9a-f-]{36})"[^>]*>Urgences adultes</option>', step.text
    ).group(1)
    regional = await post_form(
        client, f"{pro_page}/rattachements", {"organisation_id": "", "role": "regional_admin"}, pro_page
    )
    assert regional.status_code == 403
    done = await post_form(
        client,
        f"{pro_page}/rattachements",
        {"organisation_id": org_id, "service_id": service_id, "role": "expert"},
        pro_page,
    )
    assert done.status_code == 303, alert(done)
    text = text_of(await client.get(done.headers["location"]))
    assert "Rattachement ajouté." in text and "CH de Carhaix" in text and "Urgences adultes" in text
    assert "Expert requis" in text
    duplicate = await post_form(
        client,
        f"{pro_page}/rattachements",
        {"organisation_id": org_id, "service_id": service_id, "role": "expert"},
        pro_page,
    )
    assert duplicate.status_code == 409 and "Ce professionnel a déjà ce rôle ici." in text_of(duplicate)

    end = re.search(
        r'action="(/annuaire/rattachements/[0-9a-f-]{36}/fin)"', (await client.get(pro_page)).text
    )
    ended = await post_form(client, end.group(1), {}, pro_page)
    assert ended.status_code == 303 and ended.headers["location"].startswith(pro_page)
    text = text_of(await client.get(ended.headers["location"]))
    assert "Rattachement terminé." in text and "terminé le" in text
    members = text_of(await client.get(org_page))
    assert "Dr Yann KERLO" not in members


async def test_anonymous_visitor_is_sent_to_login(client):
    response = await client.get("/annuaire/etablissements")
    assert response.status_code == 303 and response.headers["location"].startswith("/connexion")
