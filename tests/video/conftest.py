"""Video tests reuse the scheduling region (EHPAD nurse, CHU geriatrician, colleague elsewhere, outsider) and add
a booked appointment."""

from __future__ import annotations

import pytest

from telesante.config import Settings
from telesante.scheduling import service as scheduling
from telesante.scheduling.schemas import AppointmentCreate
from tests.scheduling.conftest import frozen_clock, weekday_mornings, world  # noqa: F401 - fixtures


@pytest.fixture
async def appointment(session, world):  # noqa: F811 - the imported fixture
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
