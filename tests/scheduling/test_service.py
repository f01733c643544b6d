"""Scheduling rules through the service layer: patterns in Paris time, holidays, exceptions, booking, the one
live appointment per slot, cancellation, rescheduling, access by the three actors, the calendar feed."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from telesante.audit.models import AuditEvent
from telesante.config import Settings
from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.kit.holidays import easter_sunday, public_holidays
from telesante.patients.service import require_patient_access
from telesante.scheduling import service
from telesante.scheduling.models import Appointment, AppointmentStatus, Slot, SlotStatus
from telesante.scheduling.schemas import AppointmentCreate, AppointmentReschedule, ExceptionCreate
from tests.scheduling.conftest import T0, weekday_mornings

SETTINGS = Settings()


def test_easter_and_public_holidays():
    assert [easter_sunday(y) for y in (2024, 2025, 2026, 2027)] == [
        date(2024, 3, 31),
        date(2025, 4, 20),
        date(2026, 4, 5),
        date(2027, 3, 28),
    ]
    days = public_holidays(2026)
    assert len(days) == 11
    assert days[date(2026, 5, 14)] == "Ascension"
    assert days[date(2026, 5, 25)] == "Lundi de Pentecôte"
    assert date(2026, 12, 26) not in days
    assert date(2026, 12, 26) in public_holidays(2026, "alsace-moselle")
    assert date(2026, 4, 3) in public_holidays(2026, "alsace-moselle")  # Vendredi saint


def test_pattern_periods_in_paris_time_skip_christmas(world):
    periods = service.pattern_periods(
        weekday_mornings(world, valid_from=date(2026, 12, 21), valid_until=date(2026, 12, 31)), "metropole"
    )
    days = sorted({start.date() for start, _end in periods})
    assert date(2026, 12, 25) not in days and len(days) == 8  # 21–24 and 28–31 December
    assert len(periods) == 8 * 6
    assert periods[0] == (datetime(2026, 12, 21, 8, 0, tzinfo=UTC), datetime(2026, 12, 21, 8, 30, tzinfo=UTC))
    kept = service.pattern_periods(
        weekday_mornings(
            world, valid_from=date(2026, 12, 25), valid_until=date(2026, 12, 25), skip_public_holidays=False
        ),
        "metropole",
    )
    assert len(kept) == 6


def test_pattern_periods_follow_summer_time(world):
    # Summer time starts on 28 March 2027: 09:00 in Paris is 08:00 UTC before, 07:00 UTC after; 29 March 2027 is
    # Easter Monday (skipped)
    periods = service.pattern_periods(
        weekday_mornings(
            world,
            valid_from=date(2027, 3, 26),
            valid_until=date(2027, 3, 30),
            start_time=time(9, 0),
            end_time=time(10, 0),
            slot_minutes=40,
        ),
        "metropole",
    )
    assert [p[0] for p in periods] == [
        datetime(2027, 3, 26, 8, 0, tzinfo=UTC),
        datetime(2027, 3, 30, 7, 0, tzinfo=UTC),
    ]
    assert all(
        end - start == timedelta(minutes=40) for start, end in periods
    )  # the 20 minutes left are not offered


async def test_pattern_creates_future_slots_and_refuses_overlaps(session, world):
    pattern, created = await service.add_pattern(
        session, world.doctor.principal, weekday_mornings(world), SETTINGS
    )
    # December 2026 has 23 weekdays, 25 December is skipped, and 1 December 09:00 has started (now): 5 left that day
    assert created == 22 * 6 - 1
    slots = await service.list_free_slots(session, world.nurse.principal, world.offer_id, SETTINGS, days=1)
    assert slots[0][0].starts_at == T0 + timedelta(minutes=30)
    assert slots[0][1] == world.doctor.professional.display_name
    with pytest.raises(Conflict) as clash:
        await service.add_pattern(
            session,
            world.doctor.principal,
            weekday_mornings(world, start_time=time(11, 45), end_time=time(13, 0), slot_minutes=15),
            SETTINGS,
        )
    assert "01/12/2026 11:45" in clash.value.message
    ended, removed = await service.end_pattern(session, world.doctor.principal, pattern.id)
    assert ended.ended_at is not None and removed == created


async def test_only_the_doctor_or_an_administrator_opens_slots(session, world):
    for actor in (world.colleague, world.nurse, world.outsider):
        with pytest.raises(Forbidden):
            await service.add_pattern(session, actor.principal, weekday_mornings(world), SETTINGS)
    _pattern, created = await service.add_pattern(
        session, world.admin.principal, weekday_mornings(world), SETTINGS
    )
    assert created > 0
    with pytest.raises(Forbidden):  # the nurse is not a doctor of the CHU: not the administrator's to manage
        await service.add_pattern(
            session,
            world.admin.principal,
            weekday_mornings(world, professional_id=world.nurse.professional.id),
            SETTINGS,
        )
    with pytest.raises(InvalidInput) as wrong:  # the nurse opening slots for herself on the CHU's offer
        await service.add_pattern(
            session,
            world.nurse.principal,
            weekday_mornings(world, professional_id=world.nurse.professional.id),
            SETTINGS,
        )
    assert wrong.value.field == "professional_id"


async def _first_free(session, world, index=0) -> Slot:
    return (await service.list_free_slots(session, world.nurse.principal, world.offer_id, SETTINGS))[index][0]


def booking(world, slot, **overrides) -> AppointmentCreate:
    data = {
        "slot_id": slot.id,
        "patient_id": world.patient_id,
        "site_id": world.site_id,
        "reason": "Chutes répétées, avis gériatrique",
        "callback_phone": "02 61 91 50 00",
    }
    data.update(overrides)
    return AppointmentCreate(**data)


async def test_booking_claims_the_slot_once(session, world):
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), SETTINGS)
    slot = await _first_free(session, world)
    appointment = await service.book_appointment(session, world.nurse.principal, booking(world, slot))
    assert appointment.status == AppointmentStatus.BOOKED
    assert (
        appointment.organisation_id == world.ehpad_id and appointment.expert_organisation_id == world.chu_id
    )
    await session.refresh(slot)
    assert slot.status == SlotStatus.BOOKED
    with pytest.raises(Conflict) as taken:
        await service.book_appointment(session, world.nurse.principal, booking(world, slot))
    assert taken.value.field == "slot_id"
    assert slot.id not in [
        s.id
        for s, _n in await service.list_free_slots(session, world.nurse.principal, world.offer_id, SETTINGS)
    ]
    # the doctor now sees the patient (care relationship through the appointment)
    await require_patient_access(session, world.doctor.principal, world.patient_id)
    audit = await session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.object_type == "Appointment", AuditEvent.object_id == str(appointment.id)
        )
    )
    assert audit is not None and audit.patient_id == world.patient_id


async def test_one_live_appointment_per_slot_even_below_the_service(session, world):
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), SETTINGS)
    slot = await _first_free(session, world)
    first = await service.book_appointment(session, world.nurse.principal, booking(world, slot))
    copy = {c.name: getattr(first, c.name) for c in Appointment.__table__.columns if c.name not in ("id",)}
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            session.add(Appointment(**copy))
            await session.flush()


async def test_booking_refusals(session, world):
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), SETTINGS)
    slot = await _first_free(session, world)
    with pytest.raises(NotFound):  # the colleague elsewhere does not care for this patient
        await service.book_appointment(session, world.colleague.principal, booking(world, slot))
    with pytest.raises(Forbidden):
        await service.book_appointment(session, world.outsider.principal, booking(world, slot))
    with pytest.raises(InvalidInput) as unknown_site:  # not a site of the EHPAD
        await service.book_appointment(
            session, world.nurse.principal, booking(world, slot, site_id=uuid.uuid4())
        )
    assert unknown_site.value.field == "site_id"
    other_site = await service.list_sites(session, world.doctor.principal)
    assert other_site == []  # the CHU has no site; the EHPAD's is not the doctor's
    clock.set_clock(lambda: slot.starts_at + timedelta(minutes=1))
    with pytest.raises(Conflict) as past:
        await service.book_appointment(session, world.nurse.principal, booking(world, slot))
    assert "passé" in past.value.message
    clock.set_clock(lambda: T0)
    await session.refresh(slot)
    assert slot.status == SlotStatus.FREE


async def test_three_actors_see_what_they_should(session, world):
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), SETTINGS)
    appointment = await service.book_appointment(
        session, world.nurse.principal, booking(world, await _first_free(session, world))
    )
    for actor in (world.nurse, world.doctor):
        assert (await service.get_appointment(session, actor.principal, appointment.id)).id == appointment.id
        listed = await service.list_appointments(session, actor.principal, day_from=date(2026, 12, 1))
        assert [a.id for a in listed] == [appointment.id]
    for actor in (world.colleague, world.outsider):
        with pytest.raises(NotFound):
            await service.get_appointment(session, actor.principal, appointment.id)
        with pytest.raises(NotFound):
            await service.cancel_appointment(session, actor.principal, appointment.id, "pas le mien")
        assert await service.list_appointments(session, actor.principal, day_from=date(2026, 12, 1)) == []


async def test_cancel_frees_the_slot(session, world):
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), SETTINGS)
    slot = await _first_free(session, world)
    appointment = await service.book_appointment(session, world.nurse.principal, booking(world, slot))
    cancelled = await service.cancel_appointment(
        session, world.doctor.principal, appointment.id, "Hospitalisée"
    )
    assert cancelled.status == AppointmentStatus.CANCELLED and cancelled.cancel_reason == "Hospitalisée"
    with pytest.raises(Conflict):
        await service.cancel_appointment(session, world.nurse.principal, appointment.id, "encore")
    again = await service.book_appointment(session, world.nurse.principal, booking(world, slot))
    assert again.id != appointment.id and again.slot_id == slot.id


async def test_reschedule_moves_or_changes_nothing(session, world):
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), SETTINGS)
    first, second, third = [await _first_free(session, world, i) for i in range(3)]
    appointment = await service.book_appointment(session, world.nurse.principal, booking(world, first))
    other = await service.book_appointment(session, world.nurse.principal, booking(world, third))
    with pytest.raises(Conflict):
        await service.reschedule_appointment(
            session, world.nurse.principal, appointment.id, AppointmentReschedule(slot_id=third.id)
        )
    await session.refresh(appointment)
    assert appointment.status == AppointmentStatus.BOOKED
    moved = await service.reschedule_appointment(
        session, world.nurse.principal, appointment.id, AppointmentReschedule(slot_id=second.id)
    )
    await session.refresh(appointment)
    await session.refresh(first)
    assert appointment.status == AppointmentStatus.CANCELLED and appointment.rescheduled_to_id == moved.id
    assert (
        moved.slot_id == second.id and moved.reason == appointment.reason and moved.site_id == world.site_id
    )
    assert first.status == SlotStatus.FREE and other.status == AppointmentStatus.BOOKED


async def test_exception_blocks_free_slots_and_lists_appointments_to_move(session, world):
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), SETTINGS)
    slot = await _first_free(session, world)
    appointment = await service.book_appointment(session, world.nurse.principal, booking(world, slot))
    leave = ExceptionCreate(
        professional_id=world.doctor.professional.id,
        starts_at=datetime(2026, 12, 1, 0, 0, tzinfo=clock.PARIS),
        ends_at=datetime(2026, 12, 3, 0, 0, tzinfo=clock.PARIS),
        reason="Congrès",
    )
    with pytest.raises(Forbidden):
        await service.add_exception(session, world.colleague.principal, leave)
    exception, blocked, to_move = await service.add_exception(session, world.doctor.principal, leave)
    assert blocked == 4 + 6 and [a.id for a in to_move] == [appointment.id]
    free = await service.list_free_slots(session, world.nurse.principal, world.offer_id, SETTINGS)
    assert free[0][0].starts_at == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    await service.cancel_appointment(session, world.nurse.principal, appointment.id, "Médecin absent")
    await session.refresh(slot)
    assert slot.status == SlotStatus.BLOCKED  # the doctor is away: the slot is not offered again
    assert await service.remove_exception(session, world.doctor.principal, exception.id) == blocked + 1
    await session.refresh(slot)
    assert slot.status == SlotStatus.FREE


async def test_calendar_feed_has_no_patient_identity(session, world):
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), SETTINGS)
    appointment = await service.book_appointment(
        session, world.nurse.principal, booking(world, await _first_free(session, world))
    )
    body = (await service.appointments_ics(session, world.doctor.professional.id)).decode()
    assert f"rdv-{appointment.id}@telesante" in body
    assert "Salle de soins du 1er" in body and "Kerjean" not in body and "Yvonne" not in body
    assert "DTSTART:20261201T083000Z" in body


async def test_reminder_by_mail_and_sms_before_the_call(session, world):
    from telesante.jobs.models import ScheduledJob
    from telesante.notifications.sms import sms_gateway

    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), SETTINGS)
    free = await service.list_free_slots(session, world.nurse.principal, world.offer_id, SETTINGS, days=10)
    soon, later = free[0][0], free[-1][0]  # today 09:30 (within 24 h: no reminder), and in more than a week
    first = await service.book_appointment(session, world.nurse.principal, booking(world, soon))
    appointment = await service.book_appointment(session, world.nurse.principal, booking(world, later))

    async def jobs(appointment_id):
        return (
            await session.scalars(
                sa.select(ScheduledJob).where(
                    ScheduledJob.kind == service.REMINDER_JOB, ScheduledJob.dedupe_key == str(appointment_id)
                )
            )
        ).all()

    assert await jobs(first.id) == []
    [job] = await jobs(appointment.id)
    assert clock.as_utc(job.run_at) == clock.as_utc(appointment.starts_at) - timedelta(hours=24)
    gateway = sms_gateway(SETTINGS)
    before = len(gateway.sent)
    await service.send_reminder(session, {"appointment_id": str(appointment.id)})
    await session.refresh(appointment)
    assert appointment.reminder_sent_at is not None
    await run_after_commit(session)
    sent = list(gateway.sent)[before:]
    assert [s.to for s in sent] == ["+33261915000"]
    assert "Rappel : téléconsultation le" in sent[0].text and "Kerjean" not in sent[0].text
    await service.send_reminder(session, {"appointment_id": str(appointment.id)})  # once only
    await run_after_commit(session)
    assert len(gateway.sent) == before + 1
    # a cancelled appointment's reminder is cancelled
    other = await service.book_appointment(session, world.nurse.principal, booking(world, free[-2][0]))
    await service.cancel_appointment(session, world.nurse.principal, other.id, "Annulé par la famille")
    [cancelled] = await jobs(other.id)
    assert cancelled.cancelled_at is not None


async def run_after_commit(session) -> None:
    """What the request's commit would run (the test's transaction is never committed)."""
    for callback in session.info.pop("after_commit", []):
        await callback()


def test_sms_numbers_are_normalised_or_refused():
    from telesante.notifications.sms import masked, normalise_number

    assert normalise_number("06 39 98 12 34") == "+33639981234"
    assert normalise_number("+33 6 39 98 12 34") == "+33639981234"
    assert normalise_number("02.61.91.50.00") == "+33261915000"
    assert normalise_number("appelez-moi") is None and normalise_number("") is None
    assert masked("+33639981234") == "+336••••••34"
