"""Two users book the same slot at the same moment, through two engines (two application instances) on a real
database of each kind: exactly one succeeds, the other gets the French conflict, one appointment exists."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from telesante.config import Settings
from telesante.db import make_engine, make_sessionmaker, transaction
from telesante.kit.errors import Conflict
from telesante.scheduling import service
from telesante.scheduling.models import Appointment, AppointmentStatus
from telesante.scheduling.schemas import AppointmentCreate
from tests.conftest import _alembic_upgrade
from tests.scheduling.conftest import build_world, weekday_mornings


@pytest.fixture
async def database_url(engine, tmp_path):
    """A new, empty database of the same kind as the test engine's, migrated: its URL (dropped afterwards)."""
    if engine.dialect.name == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'race.sqlite3'}"
        admin = None
    else:
        name = f"race_{uuid.uuid4().hex[:12]}"
        admin = engine.execution_options(isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = engine.url.set(database=name).render_as_string(hide_password=False)
    migrator = make_engine(url)
    async with migrator.begin() as connection:
        await connection.run_sync(_alembic_upgrade)
    await migrator.dispose()
    yield url
    if admin is not None:
        async with admin.connect() as connection:
            await connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


async def test_two_simultaneous_bookings_of_one_slot(database_url):
    engines = [make_engine(database_url) for _ in range(3)]
    setup, first, second = (make_sessionmaker(e) for e in engines)
    try:
        async with transaction(setup) as session:
            world = await build_world(session)
            await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), Settings())
            slot = (
                await service.list_free_slots(session, world.nurse.principal, world.offer_id, Settings())
            )[0][0]
            slot_id, patient_id = slot.id, world.patient_id

        async def book(sessionmaker, actor) -> str:
            try:
                async with transaction(sessionmaker) as session:
                    await service.book_appointment(
                        session,
                        actor.principal,
                        AppointmentCreate(slot_id=slot_id, patient_id=patient_id, reason="Avis gériatrique"),
                    )
            except Conflict as exc:
                return exc.message
            return "booked"

        for _attempt in range(3):  # three rounds, a new slot each time the first is released
            outcomes = await asyncio.gather(book(first, world.nurse), book(second, world.nurse2))
            assert sorted(outcomes, key=lambda o: o != "booked")[0] == "booked"
            assert outcomes.count("booked") == 1, outcomes
            assert any("plus libre" in o or "vient d'être réservé" in o for o in outcomes if o != "booked")
            async with transaction(setup) as session:
                live = (
                    await session.scalars(
                        sa.select(Appointment).where(
                            Appointment.slot_id == slot_id, Appointment.status == AppointmentStatus.BOOKED
                        )
                    )
                ).all()
                assert len(live) == 1
                await service.cancel_appointment(session, world.nurse.principal, live[0].id, "Nouvel essai")
    finally:
        for e in engines:
            await e.dispose()


async def test_two_doctors_taking_the_next_patient_at_once(database_url):
    from telesante.directory.models import Organisation, Role
    from telesante.scheduling.schemas import WaitingCreate
    from tests.factories import make_actor, make_patient

    engines = [make_engine(database_url) for _ in range(3)]
    setup, first, second = (make_sessionmaker(e) for e in engines)
    try:
        async with transaction(setup) as session:
            world = await build_world(session)
            other_doctor = await make_actor(
                session, await session.get(Organisation, world.chu_id), Role.EXPERT
            )
            other_patient = await make_patient(session, world.nurse, birth_family_name="Le Bihan")
            for patient_id in (world.patient_id, other_patient.id):
                await service.join_waiting_list(
                    session,
                    world.nurse.principal,
                    WaitingCreate(offer_id=world.offer_id, patient_id=patient_id, reason="Fièvre"),
                )

        async def take(sessionmaker, actor):
            async with transaction(sessionmaker) as session:
                appointment = await service.take_next(session, actor.principal, world.offer_id)
            return appointment.patient_id

        taken = await asyncio.gather(take(first, world.doctor), take(second, other_doctor))
        assert sorted(map(str, taken)) == sorted(map(str, (world.patient_id, other_patient.id)))
    finally:
        for e in engines:
            await e.dispose()
