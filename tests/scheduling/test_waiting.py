"""Unscheduled care: a patient waits for the next available doctor of an offer; doctors take the oldest first;
two doctors at once get two different patients; the three actors; cancellation."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from telesante.directory.models import Role
from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, NotFound
from telesante.patients.service import require_patient_access
from telesante.scheduling import service
from telesante.scheduling.models import AppointmentStatus, WaitingStatus
from telesante.scheduling.schemas import WaitingCreate
from tests.factories import make_actor, make_patient
from tests.scheduling.conftest import T0


def waiting(world, patient_id=None, **overrides) -> WaitingCreate:
    data = {
        "offer_id": world.offer_id,
        "patient_id": patient_id or world.patient_id,
        "site_id": world.site_id,
        "reason": "Fièvre et toux depuis deux jours",
        "callback_phone": "06 39 98 12 34",
    }
    data.update(overrides)
    return WaitingCreate(**data)


async def test_doctors_take_the_oldest_first(session, world):
    first = await service.join_waiting_list(session, world.nurse.principal, waiting(world))
    clock.set_clock(lambda: T0 + timedelta(minutes=3))
    other_patient = await make_patient(
        session, world.nurse, birth_family_name="Le Bihan", birth_given_names="Jean"
    )
    second = await service.join_waiting_list(session, world.nurse.principal, waiting(world, other_patient.id))
    queues = await service.waiting_queue(session, world.doctor.principal)
    assert [e.id for e in queues["to_take"]] == [first.id, second.id]
    from sqlalchemy import select

    from telesante.audit.models import AuditEvent

    searches = (
        await session.scalars(
            select(AuditEvent).where(AuditEvent.object_type == "WaitingEntry", AuditEvent.action == "search")
        )
    ).all()
    assert searches and json.loads(searches[-1].details) == {"to_take": 2, "ours": 0}  # stored canonical JSON
    assert [e.id for e in (await service.waiting_queue(session, world.nurse.principal))["ours"]] == [
        second.id,
        first.id,
    ]
    clock.set_clock(lambda: T0 + timedelta(minutes=10))
    appointment = await service.take_next(session, world.doctor.principal, world.offer_id)
    assert appointment.patient_id == world.patient_id and appointment.slot_id is None
    assert clock.as_utc(appointment.starts_at) == T0 + timedelta(minutes=10)
    assert appointment.status == AppointmentStatus.BOOKED and appointment.organisation_id == world.ehpad_id
    await session.refresh(first)
    assert first.status == WaitingStatus.TAKEN and first.appointment_id == appointment.id
    await require_patient_access(
        session, world.doctor.principal, world.patient_id
    )  # linked to the doctor's side
    colleague_at_chu = await make_actor(session, await _chu(session, world), Role.EXPERT)
    taken = await service.take_next(session, colleague_at_chu.principal, world.offer_id)
    assert taken.patient_id == other_patient.id  # the next doctor gets the next patient
    with pytest.raises(NotFound):
        await service.take_next(session, world.doctor.principal, world.offer_id)


async def _chu(session, world):
    from telesante.directory.models import Organisation

    return await session.get(Organisation, world.chu_id)


async def test_who_may_join_take_and_see(session, world):
    with pytest.raises(NotFound):  # the colleague elsewhere does not care for this patient
        await service.join_waiting_list(session, world.colleague.principal, waiting(world))
    with pytest.raises(Forbidden):
        await service.join_waiting_list(session, world.outsider.principal, waiting(world))
    entry = await service.join_waiting_list(session, world.nurse.principal, waiting(world))
    for actor in (world.colleague, world.outsider, world.nurse):  # the nurse is not a doctor of the offer
        with pytest.raises(Forbidden):
            await service.take_next(session, actor.principal, world.offer_id)
        queues = await service.waiting_queue(session, actor.principal)
        assert entry.id not in [e.id for e in queues["to_take"]]
    for actor in (world.colleague, world.outsider):
        assert (await service.waiting_queue(session, actor.principal))["ours"] == []
        with pytest.raises(NotFound):
            await service.cancel_waiting(session, actor.principal, entry.id, "intrusion")


async def test_cancelled_entry_is_not_taken(session, world):
    entry = await service.join_waiting_list(session, world.nurse.principal, waiting(world))
    cancelled = await service.cancel_waiting(
        session, world.nurse.principal, entry.id, "Vu par le médecin traitant"
    )
    assert cancelled.status == WaitingStatus.CANCELLED
    with pytest.raises(Conflict):
        await service.cancel_waiting(session, world.doctor.principal, entry.id, "encore")
    with pytest.raises(NotFound):
        await service.take_next(session, world.doctor.principal, world.offer_id)
