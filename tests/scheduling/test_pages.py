"""Scheduling pages through the real app: booking from the patient's record, the appointment page with its
preparation (consent refused, then eligibility justified), the waiting list; the three actors on each page."""

from __future__ import annotations

import re

from telesante.config import Settings
from telesante.scheduling import service
from tests.patients.test_pages import post_form, sign_in, text_of
from tests.requests.conftest import give_consent
from tests.scheduling.conftest import weekday_mornings


async def _open(session, world):
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), Settings())
    return (await service.list_free_slots(session, world.nurse.principal, world.offer_id, Settings()))[0][0]


async def test_nurse_books_and_prepares_through_the_pages(client, session, world):
    slot = await _open(session, world)
    patient_id, offer_id, site_id = str(world.patient_id), str(world.offer_id), str(world.site_id)
    nurse = world.nurse
    await give_consent(session, nurse, world.patient_id, "teleexpertise")  # another act: not enough
    await sign_in(client, nurse)
    page = await client.get(f"/rendez-vous/nouveau?patient_id={patient_id}&offer_id={offer_id}")
    assert page.status_code == 200 and str(slot.id) in page.text
    booked = await post_form(
        client,
        "/rendez-vous/nouveau",
        {
            "patient_id": patient_id,
            "offer_id": offer_id,
            "slot_id": str(slot.id),
            "site_id": site_id,
            "reason": "Chutes répétées",
            "callback_phone": "02 61 91 50 00",
        },
        page=f"/rendez-vous/nouveau?patient_id={patient_id}&offer_id={offer_id}",
    )
    assert booked.status_code == 303, text_of(booked)
    detail_url = booked.headers["location"]
    assert re.fullmatch(r"/rendez-vous/[0-9a-f-]{36}", detail_url)
    again = await post_form(
        client,
        "/rendez-vous/nouveau",
        {"patient_id": patient_id, "offer_id": offer_id, "slot_id": str(slot.id), "reason": "Doublon"},
        page=f"/rendez-vous/nouveau?patient_id={patient_id}&offer_id={offer_id}",
    )
    assert again.status_code == 409 and "plus libre" in text_of(again)
    refused = await post_form(
        client, f"{detail_url}/preparer", {"callback_phone": "02 61 91 50 00"}, page=detail_url
    )
    assert refused.status_code == 409 and "Consentement du patient" in text_of(refused)
    assert 'data-consent="missing"' in refused.text and f"suite={detail_url}" in text_of(refused)
    await give_consent(session, nurse, world.patient_id, "teleconsultation")
    unjustified = await post_form(
        client,
        f"{detail_url}/preparer",
        {"bad_news": "oui", "callback_phone": "02 61 91 50 00"},
        page=detail_url,
    )
    assert unjustified.status_code == 422 and "justifiez" in text_of(unjustified)
    prepared = await post_form(
        client,
        f"{detail_url}/preparer",
        {
            "bad_news": "oui",
            "justification": "Annonce déjà faite en présence, suivi seulement.",
            "callback_phone": "02 61 91 50 00",
        },
        page=detail_url,
    )
    assert prepared.status_code == 303
    page = await client.get(detail_url)
    assert "data-prepared" in page.text and "Démarrer la téléconsultation" in text_of(page)
    agenda = await client.get("/rendez-vous?jour=2026-12-01")
    assert detail_url in agenda.text


async def test_other_actors_see_nothing(client, session, world):
    slot = await _open(session, world)
    from telesante.scheduling.schemas import AppointmentCreate

    appointment = await service.book_appointment(
        session,
        world.nurse.principal,
        AppointmentCreate(slot_id=slot.id, patient_id=world.patient_id, reason="Chutes"),
    )
    appointment_id, patient_id = appointment.id, world.patient_id
    for actor in (world.colleague, world.outsider):
        client.cookies.clear()
        await sign_in(client, actor)
        assert (await client.get(f"/rendez-vous/{appointment_id}")).status_code == 404
        assert (await client.get(f"/rendez-vous/nouveau?patient_id={patient_id}")).status_code == 404
        agenda = await client.get("/rendez-vous?jour=2026-12-01")
        assert str(appointment_id) not in agenda.text
        cancel = await post_form(
            client, f"/rendez-vous/{appointment_id}/annuler", {"cancel_reason": "x" * 5}, page="/rendez-vous"
        )
        assert cancel.status_code == 404


async def test_waiting_list_pages(client, session, world):
    patient_id, offer_id = str(world.patient_id), str(world.offer_id)
    await _open(session, world)
    await sign_in(client, world.nurse)
    page = f"/rendez-vous/nouveau?patient_id={patient_id}&offer_id={offer_id}"
    joined = await post_form(
        client,
        "/rendez-vous/file-attente",
        {
            "patient_id": patient_id,
            "offer_id": offer_id,
            "site_id": "domicile",
            "reason": "Fièvre depuis hier",
        },
        page=page,
    )
    assert joined.status_code == 303
    ours = await client.get("/rendez-vous/file-attente")
    listed = text_of(ours).upper()
    assert "EN ATTENTE" in listed and "KERJEAN" in listed
    client.cookies.clear()
    await sign_in(client, world.doctor)
    queue = await client.get("/rendez-vous/file-attente")
    assert (
        "Fièvre depuis hier" in text_of(queue) and "KERJEAN" not in text_of(queue).upper()
    )  # no identity yet
    taken = await post_form(
        client, f"/rendez-vous/file-attente/{offer_id}/suivant", {}, page="/rendez-vous/file-attente"
    )
    assert taken.status_code == 303 and taken.headers["location"].startswith("/rendez-vous/")
    detail = await client.get(taken.headers["location"])
    assert "KERJEAN" in text_of(detail).upper()


async def test_doctor_manages_availability_and_absences(client, session, world):
    await sign_in(client, world.doctor)
    page = await client.get("/rendez-vous/disponibilites")
    assert page.status_code == 200 and "Téléconsultation de gériatrie" in text_of(page)
    form = {
        "offer_id": str(world.offer_id),
        "weekdays": ["2", "4"],
        "start_time": "14:00",
        "end_time": "16:00",
        "slot_minutes": "30",
        "valid_from": "2026-12-01",
        "valid_until": "2026-12-31",
        "skip_public_holidays": "oui",
    }
    opened = await post_form(client, "/rendez-vous/disponibilites", form)
    assert opened.status_code == 303, text_of(opened)
    clash = await post_form(client, "/rendez-vous/disponibilites", form)
    assert clash.status_code == 409 and "chevauche" in text_of(clash)
    bad = await post_form(
        client, "/rendez-vous/disponibilites", {**form, "weekdays": [], "start_time": "16:00"}
    )
    assert bad.status_code == 422
    absence = await post_form(
        client,
        "/rendez-vous/absences",
        {"starts_at": "2026-12-03T00:00", "ends_at": "2026-12-04T00:00", "reason": "Formation"},
        page="/rendez-vous/disponibilites",
    )
    assert absence.status_code == 303
    page = await client.get("/rendez-vous/disponibilites")
    assert "Formation" in text_of(page) and "14:00–16:00" in text_of(page)
    free = await service.list_free_slots(session, world.nurse.principal, world.offer_id, Settings(), days=10)
    assert not [s for s, _n in free if s.starts_at.day == 3]  # Thursday 3 December is blocked
    client.cookies.clear()
    await sign_in(client, world.colleague)
    assert "Vous n'êtes expert d'aucune offre" in text_of(await client.get("/rendez-vous/disponibilites"))


async def test_reschedule_from_the_appointment_page(client, session, world):
    slot = await _open(session, world)
    from telesante.scheduling.schemas import AppointmentCreate

    appointment = await service.book_appointment(
        session,
        world.nurse.principal,
        AppointmentCreate(slot_id=slot.id, patient_id=world.patient_id, reason="Chutes"),
    )
    later = (await service.list_free_slots(session, world.nurse.principal, world.offer_id, Settings()))[3][0]
    appointment_id, later_id = appointment.id, later.id
    await sign_in(client, world.nurse)
    page = await client.get(f"/rendez-vous/{appointment_id}")
    assert str(later_id) in page.text
    moved = await post_form(
        client,
        f"/rendez-vous/{appointment_id}/reporter",
        {"slot_id": str(later_id)},
        page=f"/rendez-vous/{appointment_id}",
    )
    assert moved.status_code == 303 and moved.headers["location"] != f"/rendez-vous/{appointment_id}"
    old = await client.get(f"/rendez-vous/{appointment_id}")
    assert "Annulé" in text_of(old)


async def test_an_administrator_manages_a_doctors_agenda(client, session, world):
    from telesante.directory.models import Organisation, Role
    from tests.factories import make_actor

    admin = await make_actor(
        session, await session.get(Organisation, world.chu_id), Role.ORG_ADMIN, totp=True
    )
    doctor_id, offer_id, colleague = str(world.doctor.professional.id), str(world.offer_id), world.colleague
    await sign_in(client, admin)  # then the second factor, at the tests' frozen time
    import pyotp

    from tests.helpers import csrf_token
    from tests.scheduling.conftest import T0

    code = pyotp.TOTP(admin.account.totp_secret).at(T0)
    token = await csrf_token(client, "/connexion/code")
    assert (await client.post("/connexion/code", data={"code": code, "csrf_token": token})).status_code == 303
    page = await client.get(f"/rendez-vous/disponibilites?professional_id={doctor_id}")
    assert (
        page.status_code == 200
        and "Agenda de" in text_of(page)
        and "Téléconsultation de gériatrie" in text_of(page)
    )
    opened = await post_form(
        client,
        "/rendez-vous/disponibilites",
        {
            "professional_id": doctor_id,
            "offer_id": offer_id,
            "weekdays": ["1"],
            "start_time": "10:00",
            "end_time": "11:00",
            "slot_minutes": "30",
            "valid_from": "2026-12-01",
            "valid_until": "2026-12-31",
        },
        page=f"/rendez-vous/disponibilites?professional_id={doctor_id}",
    )
    assert opened.status_code == 303 and opened.headers["location"].endswith(doctor_id)
    patterns = await service.list_patterns(session, world.doctor.principal, world.doctor.professional.id)
    assert [p.start_time.hour for p in patterns] == [10]
    client.cookies.clear()
    await sign_in(client, colleague)
    assert (await client.get(f"/rendez-vous/disponibilites?professional_id={doctor_id}")).status_code == 403


async def test_an_absence_typed_in_paris_time_on_the_days_the_clocks_change(client, session, world):
    """The absence form's datetime-local fields are Paris wall-clock time (the shared rule of clock.from_paris):
    the hour repeated in October is its first, summer-time occurrence; the hour skipped in March is read with
    the winter offset. Bad input is named by its label; nothing is written."""
    from datetime import UTC, datetime

    from telesante.kit import clock
    from telesante.scheduling.repository import ExceptionRepository

    professional_id = world.doctor.professional.id
    await sign_in(client, world.doctor)
    agenda = "/rendez-vous/disponibilites"
    for starts_at, ends_at, reason in (
        ("2027-03-28T02:30", "2027-03-28T04:00", "Passage à l'heure d'été"),
        ("2027-10-31T02:30", "2027-10-31T03:30", "Passage à l'heure d'hiver"),
    ):
        added = await post_form(
            client,
            "/rendez-vous/absences",
            {"starts_at": starts_at, "ends_at": ends_at, "reason": reason},
            agenda,
        )
        assert added.status_code == 303, text_of(added)
    stored = await ExceptionRepository(session).list_for_professional(professional_id, since=clock.now())
    assert [(clock.as_utc(x.starts_at), clock.as_utc(x.ends_at)) for x in stored] == [
        (
            datetime(2027, 3, 28, 1, 30, tzinfo=UTC),
            datetime(2027, 3, 28, 2, 0, tzinfo=UTC),
        ),  # 02:30 = 03:30 CEST
        (datetime(2027, 10, 31, 0, 30, tzinfo=UTC), datetime(2027, 10, 31, 2, 30, tzinfo=UTC)),  # 02:30 CEST
    ]

    for form, message in (
        (
            {"starts_at": "31/12/2026 08:00", "ends_at": "2027-01-01T08:00"},
            "Début de l'absence : date et heure",
        ),
        (
            {"starts_at": "2026-12-31T08:00", "ends_at": "2207-01-01T08:00"},
            "Fin de l'absence : date attendue entre",
        ),
        ({"ends_at": "2027-01-01T08:00"}, "Début de l'absence : champ obligatoire"),
    ):
        refused = await post_form(client, "/rendez-vous/absences", {**form, "reason": "Erreur"}, agenda)
        assert refused.status_code == 422 and message in text_of(refused), text_of(refused)
    assert (
        len(await ExceptionRepository(session).list_for_professional(professional_id, since=clock.now())) == 2
    )
