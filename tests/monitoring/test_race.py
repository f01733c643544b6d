"""Two application instances receive readings of the same patient at the same moment, on a real database of each
kind: the patient's rules judge them one after the other, so the second sees the first's reading and alert. On
PostgreSQL the enrolment's row is the lock (``EnrolmentRepository.lock_states``); SQLite has one writer at a time."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import sqlalchemy as sa

from telesante.db import make_engine, make_sessionmaker, transaction
from telesante.monitoring import service
from telesante.monitoring.models import Alert, AlertStatus, Enrolment, ReadingSource
from telesante.monitoring.service import ReadingItem
from tests.factories import make_patient
from tests.monitoring.conftest import build_network, enrol
from tests.scheduling.test_race import database_url  # noqa: F401 - the fixture: a new migrated database


@contextlib.asynccontextmanager
async def three_instances(url: str):
    """Three application instances' sessionmakers on one database, each with its engine: the set-up's, and two that
    receive work at the same moment."""
    engines = [make_engine(url) for _ in range(3)]
    try:
        yield tuple(make_sessionmaker(engine) for engine in engines)
    finally:
        for engine in engines:
            await engine.dispose()


def weight(patient_id, kilograms, at) -> list[ReadingItem]:
    return [ReadingItem(0, patient_id, "29463-7", kilograms, "kg", at)]


async def send(sessionmaker, gateway, patient_id, kilograms, at):
    """One weight sent by the gateway through this instance, in a transaction of its own (committed)."""
    async with transaction(sessionmaker) as session:
        return await service.record_readings(
            session, gateway, weight(patient_id, kilograms, at), ReadingSource.DEVICE
        )


async def all_green_seen(sessionmaker, principal) -> int:
    """The nurse's "tout vert vu" through this instance, in a transaction of its own (committed)."""
    async with transaction(sessionmaker) as session:
        return await service.acknowledge_green(session, principal)


async def heart_failure_patient(setup, now, weights: list[tuple[float, int]]):
    """In a committed transaction: the network, Marcel Dufour enrolled, and his weights (kg, hours ago) sent by the
    gateway. Returns (network, patient, enrolment, the last record_readings result)."""
    async with transaction(setup) as session:
        network = await build_network(session)
        patient = await make_patient(
            session, network.cardiologist, birth_family_name="Dufour", birth_given_names="Marcel"
        )
        enrolment = await enrol(session, network, patient, devices=[])
        for kilograms, hours in weights:
            result = await service.record_readings(
                session,
                network.gateway.principal,
                weight(patient.id, kilograms, now - timedelta(hours=hours)),
                ReadingSource.DEVICE,
            )
    return network, patient, enrolment, result


async def doctor_closes(session, network, alert_id) -> None:
    """The doctor interprets the alert (a treatment change by telephone), which closes it, in this session."""
    from telesante.monitoring.models import AlertAction
    from telesante.monitoring.schemas import AlertInterpretation

    await service.interpret_alert(
        session,
        network.doctor.principal,
        alert_id,
        AlertInterpretation(
            interpretation="Diurétique augmenté par téléphone.", action=AlertAction.TREATMENT
        ),
    )


async def the_closed_alert_kept_and_a_new_one_raised(setup, enrolment_id, closed_id) -> Alert:
    """The patient's alerts after the doctor closed the alert on 78.0 → 80.6 kg and a reading of 80.9 kg was judged:
    the closed one keeps what the doctor saw, a new open red alert holds the new rise, the patient is red. Returns
    the new alert."""
    async with setup() as session:
        alerts = (
            await session.scalars(
                sa.select(Alert)
                .where(Alert.enrolment_id == enrolment_id)
                .order_by(Alert.raised_at, Alert.trigger)
            )
        ).all()
        colour = await session.scalar(sa.select(Enrolment.colour).where(Enrolment.id == enrolment_id))
    closed = next(a for a in alerts if a.id == closed_id)
    assert closed.status == AlertStatus.CLOSED
    assert [reading["value"] for reading in closed.readings] == [78.0, 80.6]
    [new] = [a for a in alerts if a.id != closed_id]
    assert (new.status, new.severity, [r["value"] for r in new.readings]) == (
        AlertStatus.OPEN,
        "red",
        [78.0, 80.9],
    )
    assert colour == "red"
    return new


async def test_two_instances_judge_one_patients_simultaneous_readings_in_turn(database_url, frozen):  # noqa: F811
    now = frozen.now
    async with three_instances(database_url) as (setup, first, second):
        network, patient, enrolment, _ = await heart_failure_patient(setup, now, [(78.0, 48)])
        gateway = network.gateway.principal

        async with first() as session:
            # +2.6 kg in two days: red, not committed yet when the second reading arrives on the other instance
            early = await service.record_readings(
                session, gateway, weight(patient.id, 80.6, now - timedelta(hours=1)), ReadingSource.DEVICE
            )
            assert [(a.rule_code, a.severity) for a in early.alerts] == [("ic_poids_3j", "red")]
            late = asyncio.create_task(send(second, gateway, patient.id, 80.9, now - timedelta(minutes=30)))
            await asyncio.sleep(0.5)  # the second instance reaches the patient's rules meanwhile
            await session.commit()
        later = await late
        assert [outcome.status for outcome in later.outcomes] == ["created"]

        async with setup() as session:
            alerts = (
                await session.scalars(
                    sa.select(Alert).where(
                        Alert.enrolment_id == enrolment.id, Alert.status != AlertStatus.CLOSED
                    )
                )
            ).all()
            colour = await session.scalar(sa.select(Enrolment.colour).where(Enrolment.id == enrolment.id))
        # one alert for the rise, brought up to date by the later reading, not a second alert beside the first
        assert [(a.rule_code, a.severity) for a in alerts] == [("ic_poids_3j", "red")]
        assert [reading["value"] for reading in alerts[0].readings] == [78.0, 80.9]
        assert colour == "red"


async def test_a_reading_judged_while_the_doctor_closes_the_alert_raises_a_new_one(database_url, frozen):  # noqa: F811
    """The doctor closes the red alert on one instance while a higher weight arrives on the other: the reading is
    judged after the decision, so the closed alert keeps what the doctor saw and the new rise raises a new alert
    (updating the alert being closed would leave the new rise without any open alert)."""

    now = frozen.now
    async with three_instances(database_url) as (setup, first, second):
        network, patient, enrolment, result = await heart_failure_patient(setup, now, [(78.0, 48), (80.6, 1)])
        gateway = network.gateway.principal
        [raised] = result.alerts

        async with first() as session:
            await doctor_closes(session, network, raised.id)
            late = asyncio.create_task(send(second, gateway, patient.id, 80.9, now - timedelta(minutes=30)))
            await asyncio.sleep(0.5)
            await session.commit()
        later = await late

        new = await the_closed_alert_kept_and_a_new_one_raised(setup, enrolment.id, raised.id)
        assert [a.id for a in later.alerts] == [new.id]


async def test_a_teams_step_on_an_alert_holds_the_patients_judgement_until_it_ends(database_url, frozen):  # noqa: F811
    """From the moment the team opens a step on an alert (filter, interpretation, teleconsultation), a reading of
    that patient arriving on another instance is not judged until the step's transaction ends: both lock the
    enrolment first, so they never wait for each other in a circle (the alert, then the enrolment on one side; the
    enrolment, then the alert on the other)."""
    now = frozen.now
    async with three_instances(database_url) as (setup, first, second):
        network, patient, enrolment, result = await heart_failure_patient(setup, now, [(78.0, 48), (80.6, 1)])
        [raised] = result.alerts
        async with first() as session:
            await service._team_alert(session, network.doctor.principal, raised.id)  # the step begins
            late = asyncio.create_task(
                send(second, network.gateway.principal, patient.id, 80.9, now - timedelta(minutes=30))
            )
            await asyncio.sleep(0.5)
            assert not late.done()  # the reading waits for the team's step
            await session.rollback()
        later = await late
        assert [outcome.status for outcome in later.outcomes] == ["created"]


async def test_all_green_seen_leaves_alone_a_patient_turned_red_on_another_instance(database_url, frozen):  # noqa: F811
    """The nurse clicks "tout vert vu" while another instance is judging a reading that turns a green patient red:
    the patient is not marked as seen. On PostgreSQL the green patients' rows are locked and their colour read again
    (the worklist itself is read without locks); on SQLite the click's transaction waits for the writer."""
    now = frozen.now
    async with three_instances(database_url) as (setup, first, second):
        network, patient, enrolment, _ = await heart_failure_patient(setup, now, [(78.0, 48)])
        async with first() as session:
            # +2.6 kg in two days on the first instance: red, not committed yet when the nurse clicks
            early = await service.record_readings(
                session,
                network.gateway.principal,
                weight(patient.id, 80.6, now - timedelta(hours=1)),
                ReadingSource.DEVICE,
            )
            assert [a.severity for a in early.alerts] == ["red"]

            acknowledged = asyncio.create_task(all_green_seen(second, network.nurse.principal))
            await asyncio.sleep(0.5)
            await session.commit()
        assert await acknowledged == 0
        async with setup() as session:
            reviewed, colour = (
                await session.execute(
                    sa.select(Enrolment.reviewed_at, Enrolment.colour).where(Enrolment.id == enrolment.id)
                )
            ).one()
        assert (reviewed, colour) == (None, "red")


async def test_all_green_seen_and_a_judged_reading_never_wait_for_each_other_in_a_circle(
    database_url,  # noqa: F811
    frozen,
):
    """A reading's transaction holds the patient's row, then appends to the audit chain; "tout vert vu" takes the
    green patients' rows before any audit row of its own. In the other order (its worklist audited first) the two
    waited for each other until PostgreSQL broke the deadlock by failing one."""
    from telesante.audit.service import Action, record_access
    from telesante.monitoring.repository import EnrolmentRepository

    now = frozen.now
    async with three_instances(database_url) as (setup, first, second):
        network, patient, enrolment, _ = await heart_failure_patient(setup, now, [(78.0, 48)])
        async with first() as session:
            await EnrolmentRepository(session).lock_states([enrolment.id])  # a reading being judged

            acknowledged = asyncio.create_task(all_green_seen(second, network.nurse.principal))
            await asyncio.sleep(0.5)  # the click reaches the patient's row meanwhile
            await record_access(  # the reading's audit row, after its judgement
                session,
                network.gateway.principal,
                action=Action.CREATE,
                object_type="MonitoringObservation",
                object_id=patient.id,
                patient_id=patient.id,
            )
            await session.commit()
        assert await acknowledged == 1  # still green: seen


async def test_a_bulk_batch_judged_after_the_doctor_closed_the_alert_raises_a_new_one(
    database_url,  # noqa: F811
    frozen,
    monkeypatch,
):
    """A gateway's bulk batch brings a higher weight while the doctor closes the red alert on another instance. On
    PostgreSQL the batch's readings are committed first and judged afterwards, in groups: the doctor closes the alert
    in between. On SQLite a part is judged in the transaction that stores it: the doctor's decision comes first. Either
    way the alert is read as it is when the rules are judged: the closed one keeps what the doctor saw and the new
    rise raises a new alert."""
    from telesante.fhir import monitoring as fhir_monitoring
    from tests.monitoring.test_fhir import enrol_others, entry, observation

    now = frozen.now
    async with three_instances(database_url) as (setup, first, second):
        network, patient, enrolment, result = await heart_failure_patient(setup, now, [(78.0, 48), (80.6, 1)])
        [raised] = result.alerts
        async with transaction(setup) as session:
            others = await enrol_others(session, network, 4)
        postgresql = "postgresql" in database_url
        closed: list[str] = []

        async def doctor_closes_the_alert(when: str) -> None:
            async with transaction(second) as session:
                await doctor_closes(session, network, raised.id)
            closed.append(when)

        real_judge = service.judge

        async def judge(session, enrolments, pending, **options):
            if not closed:
                await doctor_closes_the_alert("between the storing and the judging")
            return await real_judge(session, enrolments, pending, **options)

        monkeypatch.setattr(service, "judge", judge)
        if not postgresql:
            await doctor_closes_the_alert("before the batch")
        readings = [observation(patient.id, "29463-7", 80.9, "kg", now - timedelta(minutes=30))]
        readings += [
            observation(others[n % 4].id, "29463-7", 70.0, "kg", now - timedelta(hours=n + 2))
            for n in range(55)
        ]
        async with transaction(first) as session:
            answer = await fhir_monitoring.batch(
                session,
                network.gateway.principal,
                await fhir_monitoring.prepare_batch(
                    {"resourceType": "Bundle", "type": "batch", "entry": [entry(r) for r in readings]}
                ),
            )
        assert closed == ["between the storing and the judging" if postgresql else "before the batch"]
        assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 56

        await the_closed_alert_kept_and_a_new_one_raised(setup, enrolment.id, raised.id)
