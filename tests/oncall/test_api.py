"""On-call JSON routes, pages and the ICS feed through the real app; three actors on every edit route."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import icalendar
import pytest

from telesante.oncall import service
from telesante.oncall.models import PageStatus
from tests.factories import token_for
from tests.oncall.support import T0, at, make_world, shift
from tests.patients.test_pages import post_form, sign_in

H = timedelta(hours=1)


def iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture
async def world(session):
    world = await make_world(session)
    at(T0)
    return world


async def _auth(session, actor):
    return await token_for(session, actor)


def _edit_routes(world, shift_id, other_shift_id):
    alice = str(world.alice.principal.professional_id)
    return [
        ("PATCH", f"/api/rotas/{world.rota_id}", {"ack_minutes": 7}),
        (
            "POST",
            f"/api/rotas/{world.rota_id}/shifts",
            {"professional_id": alice, "starts_at": iso(T0 + 30 * H), "ends_at": iso(T0 + 31 * H)},
        ),
        (
            "POST",
            f"/api/rotas/{world.rota_id}/patterns",
            {
                "professional_id": alice,
                "weekdays": [6],
                "start_time": "08:30",
                "end_time": "18:30",
                "valid_from": "2026-12-05",
                "valid_until": "2026-12-06",
            },
        ),
        (
            "POST",
            f"/api/shifts/{shift_id}/replacement",
            {"to_professional_id": str(world.chloe.principal.professional_id), "reason": "Congé"},
        ),
        (
            "POST",
            f"/api/shifts/{shift_id}/swap",
            {"other_shift_id": str(other_shift_id), "reason": "Échange"},
        ),
        ("POST", f"/api/shifts/{other_shift_id}/cancel", None),
    ]


@pytest.mark.parametrize("actor_name, expected", [("alice", 403), ("elsewhere", 404), ("outsider", 404)])
async def test_edit_routes_refuse_members_colleagues_elsewhere_and_outsiders(
    client, session, world, actor_name, expected
):
    # Bruno's shifts: Alice (a member, not an editor) may neither edit the rota nor hand over others' shifts.
    held = await shift(session, world, world.bruno, T0, T0 + 2 * H)
    other = await shift(session, world, world.chloe, T0 + 2 * H, T0 + 4 * H)
    headers = await _auth(session, getattr(world, actor_name))
    for method, path, body in _edit_routes(world, held.id, other.id):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == expected, (method, path, response.text)
        assert response.json()["detail"]
    for path in (f"/api/rotas/{world.rota_id}", f"/api/rotas/{world.rota_id}/coverage"):
        response = await client.get(path, headers=headers)
        assert response.status_code == (200 if actor_name == "alice" else 404), path
    assert (await service.on_duty(session, world.rota_id, T0 + H)).primary_professional_id == (
        world.bruno.principal.professional_id
    )


async def test_administrator_and_head_edit_through_the_api(client, session, world):
    admin = await _auth(session, world.admin)
    head = await _auth(session, world.head)
    alice = str(world.alice.principal.professional_id)
    response = await client.post(
        f"/api/rotas/{world.rota_id}/shifts",
        json={"professional_id": alice, "starts_at": iso(T0), "ends_at": iso(T0 + 12 * H)},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    first = response.json()
    assert first["professional_id"] == alice and first["starts_at"].startswith("2026-12-01T12:00:00")

    # A naive time is Paris local time (an HTML datetime-local field).
    response = await client.post(
        f"/api/rotas/{world.rota_id}/shifts",
        json={
            "professional_id": str(world.bruno.principal.professional_id),
            "starts_at": "2026-12-02T01:00",
            "ends_at": "2026-12-02T09:00",
        },
        headers=head,
    )
    assert response.status_code == 201, response.text
    assert response.json()["starts_at"].startswith("2026-12-02T00:00:00")

    response = await client.post(
        f"/api/rotas/{world.rota_id}/shifts",
        json={
            "professional_id": str(world.chloe.principal.professional_id),
            "starts_at": iso(T0 + H),
            "ends_at": iso(T0 + 2 * H),
        },
        headers=admin,
    )
    assert response.status_code == 409
    assert "Chevauchement" in response.json()["detail"]

    response = await client.post(
        f"/api/rotas/{world.rota_id}/shifts",
        json={"professional_id": alice, "starts_at": "demain", "ends_at": iso(T0)},
        headers=admin,
    )
    assert response.status_code == 422
    assert "starts_at" in response.text

    response = await client.get(f"/api/rotas/{world.rota_id}/coverage", headers=admin)
    gaps = response.json()["gaps"]
    assert [g["starts_at"][:19] for g in gaps] == [
        "2026-12-02T08:00:00"
    ]  # 09:00 Paris, to the end of the window
    assert response.json()["covered"] is False

    response = await client.get(
        f"/api/rotas/{world.rota_id}/on-duty", params={"at": iso(T0 + H)}, headers=admin
    )
    assert response.json()["primary_professional_id"] == alice

    response = await client.post(
        f"/api/shifts/{first['id']}/replacement",
        json={"to_professional_id": str(world.chloe.principal.professional_id), "reason": "Congé"},
        headers=await _auth(session, world.alice),  # the holder hands over her own shift
    )
    assert response.status_code == 200, response.text
    history = await client.get(f"/api/shifts/{first['id']}/changes", headers=admin)
    assert [c["kind"] for c in history.json()] == ["replacement"]


async def test_create_rota_through_the_api_with_french_errors(client, session, world):
    admin = await _auth(session, world.admin)
    body = {
        "name": "Astreinte de pédiatrie",
        "organisation_id": str(world.organisation_id),
        "head_professional_id": str(world.head.principal.professional_id),
    }
    response = await client.post("/api/rotas", json=body, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["ack_minutes"] == 5
    assert response.json()["organisation_ids"] == [str(world.organisation_id)]
    response = await client.post(
        "/api/rotas",
        json={**body, "head_professional_id": str(world.elsewhere.principal.professional_id)},
        headers=admin,
    )
    assert response.status_code == 422 and "chef de service" in response.json()["detail"]
    response = await client.post("/api/rotas", json={**body, "ack_minutes": 0}, headers=admin)
    assert response.status_code == 422 and "ack_minutes" in response.text
    response = await client.post("/api/rotas", json=body, headers=await _auth(session, world.alice))
    assert response.status_code == 403


async def test_acknowledge_through_the_api_and_htmx(client, session, world):
    await shift(session, world, world.alice, T0 - H, T0 + H)
    first = await service.page_on_call(
        session,
        world.rota_id,
        subject_type="tele_request",
        subject_id=uuid.uuid4(),
        summary="Avis urgent",
        ack_minutes=5,
        urgent=True,
    )
    second = await service.page_on_call(
        session,
        world.rota_id,
        subject_type="tele_request",
        subject_id=uuid.uuid4(),
        summary="Deuxième avis",
        ack_minutes=5,
        urgent=False,
    )
    response = await client.post(
        f"/api/oncall/pages/{first.id}/acknowledge", headers=await _auth(session, world.bruno)
    )
    assert response.status_code == 403
    response = await client.post(
        f"/api/oncall/pages/{first.id}/acknowledge", headers=await _auth(session, world.elsewhere)
    )
    assert response.status_code == 404
    response = await client.post(
        f"/api/oncall/pages/{first.id}/acknowledge", headers=await _auth(session, world.alice)
    )
    assert response.status_code == 200 and response.json()["status"] == "acknowledged"

    await sign_in(client, world.alice)
    page = await client.get("/gardes/mes-gardes")
    assert page.status_code == 200
    assert "Deuxième avis" in page.text and "Avis urgent" not in page.text
    response = await post_form(client, f"/gardes/appels/{second.id}/acquitter", {}, page="/gardes/mes-gardes")
    assert response.status_code == 303
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
    response = await client.post(
        f"/gardes/appels/{second.id}/acquitter", data={"csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 409  # already acknowledged by the form above
    journal = await client.get(f"/gardes/appels/{second.id}")
    assert "Acquittement" in journal.text
    assert (
        await service.get_page(session, world.alice.principal, second.id)
    ).status == PageStatus.ACKNOWLEDGED


async def test_htmx_acknowledge_returns_the_fragment(client, session, world):
    await shift(session, world, world.alice, T0 - H, T0 + H)
    page = await service.page_on_call(
        session,
        world.rota_id,
        subject_type="tele_request",
        subject_id=uuid.uuid4(),
        summary="Avis urgent",
        ack_minutes=5,
        urgent=True,
    )
    await sign_in(client, world.alice)
    mine = await client.get("/gardes/mes-gardes")
    assert f'hx-post="/gardes/appels/{page.id}/acquitter"' in mine.text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', mine.text).group(1)
    response = await client.post(
        f"/gardes/appels/{page.id}/acquitter", data={"csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<div id="appel-{page.id}"')
    assert "Acquitté" in response.text and "<html" not in response.text


async def test_rota_pages_render_in_french_without_inline_code(client, session, world):
    await shift(session, world, world.alice, T0, T0 + 10 * H)
    await sign_in(client, world.alice)
    for path in (
        "/gardes",
        f"/gardes/{world.rota_id}",
        "/gardes/mes-gardes",
        f"/gardes/{world.rota_id}?semaine=2026-12-01",
    ):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.text), path
        assert " style=" not in response.text and "<style" not in response.text, path
        assert "onclick" not in response.text
    detail = await client.get(f"/gardes/{world.rota_id}")
    assert "Couverture des 30 prochains jours" in detail.text
    assert "créneau(x) sans titulaire" in detail.text
    assert "Ajouter une garde" not in detail.text  # Alice is a member, not an editor
    other = await client.get(f"/gardes/{uuid.uuid4()}")
    assert other.status_code == 404


async def test_editor_adds_a_shift_through_the_page_and_sees_errors(client, session, world):
    await sign_in(client, world.head)
    path = f"/gardes/{world.rota_id}"
    response = await post_form(
        client,
        f"{path}/creneaux",
        {
            "professional_id": str(world.alice.principal.professional_id),
            "role": "primary",
            "starts_at": "2026-12-01T20:00",
            "ends_at": "2026-12-01T19:00",
        },
        page=path,
    )
    assert response.status_code == 422
    assert "Fin : " in response.text or "postérieure" in response.text
    response = await post_form(
        client,
        f"{path}/creneaux",
        {
            "professional_id": str(world.alice.principal.professional_id),
            "role": "primary",
            "starts_at": "2026-12-01T20:00",
            "ends_at": "2026-12-02T08:00",
        },
        page=path,
    )
    assert response.status_code == 303
    duty = await service.on_duty(session, world.rota_id, T0 + 8 * H)  # 21:00 Paris
    assert duty.primary_professional_id == world.alice.principal.professional_id


async def test_ics_feed_by_secret_address_and_by_session(client, session, world):
    mine = await shift(session, world, world.alice, T0, T0 + 10 * H)
    token = await service.create_calendar_feed(session, world.alice.principal)
    response = await client.get(f"/calendrier/gardes/{token}.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    (event,) = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
    assert str(event["UID"]) == f"garde-{mine.id}@telesante"
    assert event.decoded("DTSTART") == T0 and event.decoded("DTEND") == T0 + 10 * H
    assert (await client.get("/calendrier/gardes/inconnu.ics")).status_code == 404

    response = await client.get("/api/me/shifts.ics", headers=await _auth(session, world.bruno))
    assert response.status_code == 200
    assert icalendar.Calendar.from_ical(response.content).walk("VEVENT") == []
    assert (await client.get("/api/me/shifts.ics")).status_code == 401

    response = await client.post("/api/me/calendar-feed", headers=await _auth(session, world.alice))
    assert response.status_code == 201
    assert (await client.get(response.json()["path"])).status_code == 200
    assert (await client.get(f"/calendrier/gardes/{token}.ics")).status_code == 404  # rotated


async def test_out_of_range_dates_are_refused_not_crashing(client, session, world):
    admin = await _auth(session, world.admin)
    alice = str(world.alice.principal.professional_id)
    cases = [
        ("GET", f"/api/rotas/{world.rota_id}/shifts?from=9999-12-31T23:59:59Z", None),
        ("GET", f"/api/rotas/{world.rota_id}/on-duty?at=0001-01-01T00:00:00", None),
        (
            "POST",
            f"/api/rotas/{world.rota_id}/shifts",
            {"professional_id": alice, "starts_at": "0001-01-01T00:00", "ends_at": "0001-01-01T01:00"},
        ),
        (
            "POST",
            f"/api/rotas/{world.rota_id}/patterns",
            {
                "professional_id": alice,
                "weekdays": [1],
                "start_time": "08:00",
                "end_time": "09:00",
                "valid_from": "9999-12-01",
                "valid_until": "9999-12-31",
            },
        ),
    ]
    for method, path, body in cases:
        response = await client.request(method, path, json=body, headers=admin)
        assert response.status_code == 422, (path, response.text)
        assert "2000" in response.text


async def test_pattern_and_replacement_forms(client, session, world):
    await sign_in(client, world.head)
    path = f"/gardes/{world.rota_id}"
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', (await client.get(path)).text).group(1)
    form = {
        "csrf_token": token,
        "professional_id": str(world.bruno.principal.professional_id),
        "role": "primary",
        "label": "nuit en semaine",
        "weekdays": ["1", "2"],
        "start_time": "18:30",
        "end_time": "08:30",
        "valid_from": "2026-12-07",
        "valid_until": "2026-12-13",
    }
    response = await client.post(f"{path}/modeles", data=form)
    assert response.status_code == 303, response.text
    shifts = await service.list_shifts(session, world.head.principal, world.rota_id)
    assert [(s["starts_at"].isoformat(), s["ends_at"].isoformat()) for s in shifts] == [
        ("2026-12-07T17:30:00+00:00", "2026-12-08T07:30:00+00:00"),
        ("2026-12-08T17:30:00+00:00", "2026-12-09T07:30:00+00:00"),
    ]
    response = await client.post(f"{path}/modeles", data={k: v for k, v in form.items() if k != "weekdays"})
    assert response.status_code == 422 and "Jours" in response.text

    week = f"{path}?semaine=2026-12-07"
    page = await client.get(week)
    assert page.text.count("Céder la garde") == 2
    response = await post_form(
        client,
        f"{path}/creneaux/{shifts[0]['id']}/remplacement",
        {"to_professional_id": str(world.chloe.principal.professional_id), "reason": "Formation"},
        page=week,
    )
    assert response.status_code == 303
    duty = await service.on_duty(session, world.rota_id, shifts[0]["starts_at"] + H)
    assert duty.primary_professional_id == world.chloe.principal.professional_id


async def test_new_rota_page_for_administrators_only(client, session, world):
    await sign_in(client, world.alice)
    response = await client.get(f"/gardes/nouvelle?organisation_id={world.organisation_id}")
    assert response.status_code == 403
