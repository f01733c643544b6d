"""Scheduling JSON routes through the real app: booking races answer 409, the three actors, bad input."""

from __future__ import annotations

import icalendar
import pytest

from telesante.config import Settings
from telesante.oncall import service as oncall_service
from telesante.scheduling import service
from tests.factories import token_for
from tests.scheduling.conftest import weekday_mornings


@pytest.fixture
async def opened(session, world):
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), Settings())
    return world


async def _slots(client, headers, offer_id):
    response = await client.get(
        f"/api/scheduling/offers/{offer_id}/slots", headers=headers, params={"days": 2}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_book_list_cancel_through_the_api(client, session, opened):
    world = opened
    nurse = await token_for(session, world.nurse)
    slots = await _slots(client, nurse, world.offer_id)
    assert slots and slots[0]["status"] == "free" and slots[0]["professional_name"]
    body = {
        "slot_id": slots[0]["id"],
        "patient_id": str(world.patient_id),
        "site_id": str(world.site_id),
        "reason": "Plaie du talon, avis",
        "callback_phone": "+33 2 61 91 50 00",
    }
    created = await client.post("/api/scheduling/appointments", json=body, headers=nurse)
    assert created.status_code == 201, created.text
    appointment = created.json()
    again = await client.post("/api/scheduling/appointments", json=body, headers=nurse)
    assert again.status_code == 409 and "plus libre" in again.json()["detail"]
    assert slots[0]["id"] not in [s["id"] for s in await _slots(client, nurse, world.offer_id)]

    doctor = await token_for(session, world.doctor)
    listed = await client.get("/api/scheduling/appointments", params={"from": "2026-12-01"}, headers=doctor)
    assert [a["id"] for a in listed.json()] == [appointment["id"]]
    for actor in (world.colleague, world.outsider):
        headers = await token_for(session, actor)
        for method, path, json in (
            ("GET", f"/api/scheduling/appointments/{appointment['id']}", None),
            ("POST", f"/api/scheduling/appointments/{appointment['id']}/cancel", {"reason": "intrusion"}),
            (
                "POST",
                f"/api/scheduling/appointments/{appointment['id']}/reschedule",
                {"slot_id": slots[1]["id"]},
            ),
        ):
            response = await client.request(method, path, json=json, headers=headers)
            assert response.status_code == 404, (actor, path, response.text)
        listed = await client.get(
            "/api/scheduling/appointments", params={"from": "2026-12-01"}, headers=headers
        )
        assert listed.json() == []
    outsider = await token_for(session, world.outsider)
    assert (
        await client.get(f"/api/scheduling/offers/{world.offer_id}/slots", headers=outsider)
    ).status_code == 404

    moved = await client.post(
        f"/api/scheduling/appointments/{appointment['id']}/reschedule",
        json={"slot_id": slots[1]["id"]},
        headers=doctor,
    )
    assert moved.status_code == 200 and moved.json()["slot_id"] == slots[1]["id"]
    cancelled = await client.post(
        f"/api/scheduling/appointments/{moved.json()['id']}/cancel",
        json={"reason": "Résidente hospitalisée"},
        headers=nurse,
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"callback_phone": "appelez-moi"}, "callback_phone"),
        ({"reason": ""}, "reason"),
        ({"slot_id": "pas-un-uuid"}, "slot_id"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_bad_booking_input_names_the_field(client, session, opened, change, field):
    world = opened
    nurse = await token_for(session, world.nurse)
    slots = await _slots(client, nurse, world.offer_id)
    body = {"slot_id": slots[0]["id"], "patient_id": str(world.patient_id), "reason": "Motif valable"}
    body.update(change)
    response = await client.post("/api/scheduling/appointments", json=body, headers=nurse)
    assert response.status_code in (400, 422), response.text
    assert field in response.text
    assert (await _slots(client, nurse, world.offer_id))[0]["id"] == slots[0]["id"]  # nothing claimed


async def test_pattern_and_exception_routes(client, session, world):
    doctor_id = str(world.doctor.professional.id)  # plain ids: ORM objects expire when a request commits
    doctor = await token_for(session, world.doctor)
    colleague = await token_for(session, world.colleague)
    bad = await client.post(
        "/api/scheduling/patterns",
        json={
            "professional_id": doctor_id,
            "offer_id": str(world.offer_id),
            "weekdays": [1, 9],
            "start_time": "09:00",
            "end_time": "12:00",
            "slot_minutes": 30,
            "valid_from": "2026-12-01",
            "valid_until": "2026-12-31",
        },
        headers=doctor,
    )
    assert bad.status_code in (400, 422) and "weekdays" in bad.text
    created = await client.post(
        "/api/scheduling/patterns",
        json={
            "professional_id": doctor_id,
            "offer_id": str(world.offer_id),
            "weekdays": [2],
            "start_time": "14:00",
            "end_time": "16:00",
            "slot_minutes": 20,
            "valid_from": "2026-12-01",
            "valid_until": "2026-12-31",
        },
        headers=doctor,
    )
    assert created.status_code == 201, created.text
    assert created.json()["slots_created"] == 5 * 6  # five Tuesdays of December, six slots each
    leave = await client.post(
        "/api/scheduling/exceptions",
        json={
            "professional_id": doctor_id,
            "starts_at": "2026-12-08T00:00:00+01:00",
            "ends_at": "2026-12-09T00:00:00+01:00",
            "reason": "Formation",
        },
        headers=doctor,
    )
    assert leave.status_code == 201 and leave.json()["slots_blocked"] == 6
    naive = await client.post(
        "/api/scheduling/exceptions",
        json={
            "professional_id": doctor_id,
            "starts_at": "2026-12-08T00:00:00",
            "ends_at": "2026-12-09T00:00:00",
        },
        headers=doctor,
    )
    assert naive.status_code in (400, 422) and "fuseau" in naive.text
    freed = await client.delete(
        f"/api/scheduling/exceptions/{leave.json()['exception']['id']}", headers=doctor
    )
    assert freed.json() == {"slots_freed": 6}
    ended = await client.post(
        f"/api/scheduling/patterns/{created.json()['pattern']['id']}/end", headers=colleague
    )
    assert ended.status_code == 403


async def test_calendar_feed_by_secret_address(client, session, opened):
    world = opened
    slot = (await service.list_free_slots(session, world.nurse.principal, world.offer_id, Settings()))[0][0]
    from telesante.scheduling.schemas import AppointmentCreate

    await service.book_appointment(
        session,
        world.nurse.principal,
        AppointmentCreate(slot_id=slot.id, patient_id=world.patient_id, reason="Bilan de chutes"),
    )
    token = await oncall_service.create_calendar_feed(session, world.doctor.principal)
    response = await client.get(f"/calendrier/rendez-vous/{token}.ics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    events = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
    assert [str(e["summary"]) for e in events] == ["Téléconsultation — Domicile du patient"]
    assert (await client.get("/calendrier/rendez-vous/inconnu.ics")).status_code == 404


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
async def test_a_day_out_of_the_calendar_is_refused_with_its_field(client, session, world, day):
    """A listing from year 1 or 9999 (found by schemathesis: it overflowed once moved to UTC, a 500) is a 422 naming
    the field; so is a weekly pattern starting or ending there."""
    doctor_id, offer_id = (
        str(world.doctor.professional.id),
        str(world.offer_id),
    )  # before requests expire them
    doctor = await token_for(session, world.doctor)
    listed = await client.get("/api/scheduling/appointments", params={"from": day}, headers=doctor)
    assert listed.status_code == 422 and "from" in listed.text and "2000" in listed.text
    pattern = await client.post(
        "/api/scheduling/patterns",
        json={
            "professional_id": doctor_id,
            "offer_id": offer_id,
            "weekdays": [1],
            "start_time": "00:00",
            "end_time": "01:00",
            "slot_minutes": 30,
            "valid_from": day,
            "valid_until": day,
        },
        headers=doctor,
    )
    assert pattern.status_code == 422 and "valid_from" in pattern.text
