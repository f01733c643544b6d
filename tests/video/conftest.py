"""Video tests reuse the scheduling region (EHPAD nurse, CHU geriatrician, colleague elsewhere, outsider) and add
a booked appointment, then the same appointment prepared for the call."""

from __future__ import annotations

import pytest

from telesante.config import Settings
from telesante.scheduling import service as scheduling
from telesante.scheduling.schemas import AppointmentCreate, CallPreparation
from tests.requests.conftest import give_consent
from tests.scheduling.conftest import frozen_clock, weekday_mornings, world  # noqa: F401 - fixtures

PREPARED = CallPreparation(
    physical_exam_needed=False,
    bad_news=False,
    data_unavailable=False,
    communication_impossible=False,
    callback_phone="02 61 91 50 00",
)


@pytest.fixture
async def booked(session, world):  # noqa: F811 - the imported fixture
    """A booked appointment, not yet prepared."""
    await scheduling.add_pattern(session, world.doctor.principal, weekday_mornings(world), Settings())
    slot = (await scheduling.list_free_slots(session, world.nurse.principal, world.offer_id, Settings()))[0][
        0
    ]
    return await scheduling.book_appointment(
        session,
        world.nurse.principal,
        AppointmentCreate(
            slot_id=slot.id, patient_id=world.patient_id, site_id=world.site_id, reason="Chutes"
        ),
    )


@pytest.fixture
async def appointment(session, world, booked):  # noqa: F811
    """The appointment prepared by the nurse: consent recorded, checklist answered, the act opened."""
    await give_consent(session, world.nurse, world.patient_id, "teleconsultation")
    return await scheduling.prepare_call(session, world.nurse.principal, booked.id, PREPARED)
