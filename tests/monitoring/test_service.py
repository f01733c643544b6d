"""Remote monitoring through the service: enrolment with consent (and refusal), readings from the patient's page
and from a device gateway, rules on arrival and on schedule, alerts and their triage, the three actors."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from telesante.consents import service as consent_service
from telesante.consents.models import ConsentDecision, ConsentScopeType
from telesante.directory.models import Role
from telesante.events.service import use_event_bus
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from telesante.kit.schemas import parse_input
from telesante.monitoring import clinical, service
from telesante.monitoring.models import AlertAction, AlertStatus, EnrolmentStatus, ReadingSource
from telesante.monitoring.schemas import AlertInterpretation, DeviceIn, EducationCreate, ProgrammeCreate
from telesante.monitoring.service import ReadingItem
from telesante.patients import service as patients_service
from tests.factories import patient_data
from tests.monitoring.conftest import enrol
from tests.stroke.test_service import RecordingBus, _commit


def weight(index, patient_id, kilograms, at, **extra) -> ReadingItem:
    return ReadingItem(index, patient_id, "29463-7", kilograms, "kg", at, **extra)


async def test_enrolment_records_both_consents_and_opens_the_patient_to_the_team(session, network, patient):
    enrolment = await enrol(session, network, patient)
    assert enrolment.status == EnrolmentStatus.ACTIVE
    assert enrolment.organisation_id == network.team_id
    assert enrolment.ends_on - enrolment.starts_on == timedelta(days=service.DEFAULT_DURATION_DAYS)
    for scope, code in (
        (ConsentScopeType.ACT, "telesurveillance"),
        (ConsentScopeType.MONITORING_PROGRAMME, "insuffisance_cardiaque"),
    ):
        check = await consent_service.check_consent(
            session, network.cardiologist.principal, patient.id, scope, code
        )
        assert check.allowed, (scope, check.message)
    # the team now has the patient in care; the colleague elsewhere and the outsider do not
    view = await service.get_enrolment(session, network.nurse.principal, enrolment.id)
    assert view.team_member and [d.serial for d in view.devices] == ["SCALE-0001"]
    assert not (
        await service.get_enrolment(session, network.cardiologist.principal, enrolment.id)
    ).team_member
    for stranger in (network.colleague, network.outsider):
        with pytest.raises(NotFound):
            await service.get_enrolment(session, stranger.principal, enrolment.id)
    with pytest.raises(Conflict, match="déjà suivi"):
        await enrol(session, network, patient, devices=[])


async def test_a_refusal_is_recorded_with_the_conventional_follow_up_offered(session, network, patient):
    with pytest.raises(InvalidInput) as refused:
        await enrol(session, network, patient, decision=ConsentDecision.REFUSED)
    assert refused.value.field == "conventional_follow_up_offered"
    enrolment = await enrol(
        session,
        network,
        patient,
        decision=ConsentDecision.REFUSED,
        conventional_follow_up_offered=True,
        refusal_reason="Ne souhaite pas d'appareil à domicile",
    )
    assert enrolment.status == EnrolmentStatus.REFUSED and enrolment.starts_on is None
    check = await consent_service.check_consent(
        session, network.cardiologist.principal, patient.id, ConsentScopeType.ACT, "telesurveillance"
    )
    assert check.state == "refused"
    # no care relationship for the team, no link for the patient
    with pytest.raises(NotFound):
        await patients_service.require_patient_access(session, network.nurse.principal, patient.id)
    with pytest.raises(Conflict):
        await service.issue_patient_link(session, network.cardiologist.principal, enrolment.id)


async def test_three_days_of_rising_weight_on_the_patient_page_raise_a_red_alert(
    session, network, patient, frozen
):
    enrolment = await enrol(session, network, patient)
    _, token, pin = await service.issue_patient_link(session, network.cardiologist.principal, enrolment.id)
    assert len(pin) == service.PIN_DIGITS and token not in (enrolment.link_hash or "")
    bus = RecordingBus()
    with use_event_bus(bus):
        results = []
        for day, kilograms in enumerate((78.4, 79.3, 80.6)):
            frozen.now = frozen.now.replace(hour=6) + timedelta(days=1 if day else 0)
            page = await service.check_patient_pin(session, token, pin)
            results.append(
                await service.record_readings(
                    session,
                    None,
                    [service.ReadingItem(0, None, "29463-7", kilograms, "kg", None)],
                    ReadingSource.PATIENT,
                    enrolment=page,
                )
            )
            await _commit(session)
    assert [r.outcomes[0].status for r in results] == ["created"] * 3
    assert results[0].alerts == [] and results[1].alerts == []
    [alert] = results[2].alerts
    assert alert.severity == "red" and alert.rule_code == "ic_poids_3j"
    assert alert.message == "Poids : prise de 2,2 kg en 2 jours (78,4 → 80,6 kg)."
    assert [r["value"] for r in alert.readings] == [78.4, 80.6]
    # 07:00 in Paris on a Thursday is outside the declared hours (08:00–18:00): it waits, and says until when
    assert alert.outside_hours and service.next_opening(network.programme, frozen.now) == alert.seen_from
    events = [e for e in bus.events if e.type == "monitoring.alert"]
    assert len(events) == 1 and not events[0].urgent  # outside hours: it does not ring
    assert network.nurse.account.id in events[0].recipients
    assert network.cardiologist.account.id not in events[0].recipients
    rows = await service.worklist(session, network.nurse.principal)
    assert [(r.enrolment.id, r.enrolment.colour) for r in rows] == [(enrolment.id, "red")]


async def test_the_same_reading_twice_is_stored_once(session, network, patient, frozen):
    enrolment = await enrol(session, network, patient)
    at = frozen.now - timedelta(hours=1)
    batch = [
        weight(0, patient.id, 80.0, at, device_serial="SCALE-0001", identifier="urn:scale|42"),
        weight(1, patient.id, 80.0, at, device_serial="SCALE-0001", identifier="urn:scale|42"),
        weight(
            2, patient.id, 176.4, at, device_serial="SCALE-0001"
        ),  # no identifier: same device, code and time
    ]
    batch[2].unit = "[lb_av]"
    first = await service.record_readings(session, network.gateway.principal, batch, ReadingSource.DEVICE)
    assert [o.status for o in first.outcomes] == ["created", "duplicate", "created"]
    again = await service.record_readings(session, network.gateway.principal, batch, ReadingSource.DEVICE)
    assert [o.status for o in again.outcomes] == ["duplicate"] * 3
    assert again.outcomes[0].observation_ids == first.outcomes[0].observation_ids
    series = await service.readings_of(session, network.doctor.principal, enrolment.id)
    assert sorted(o.value for o in series) == [80.0, 80.0]  # 176.4 lb converted
    assert {o.sent_unit for o in series} == {"kg", "[lb_av]"}
    # stored under time-ordered keys (kit.models.uuid7): the readings' index grows at its end
    assert {o.id.version for o in series} == {7}


async def test_a_batch_stores_the_good_readings_and_says_why_each_bad_one_is_refused(
    session, network, patient, frozen
):
    enrolment = await enrol(session, network, patient)
    stranger = await patients_service.register_patient(
        session,
        network.cardiologist.principal,
        patient_data(birth_family_name="Roux"),
    )
    now = frozen.now
    batch = [
        weight(0, patient.id, 81.2, now - timedelta(hours=2)),
        ReadingItem(1, patient.id, "1234-5", 3, "kg", now),
        ReadingItem(2, patient.id, "8480-6", 120, None, now),
        ReadingItem(3, patient.id, "29463-7", 12, "stone", now),
        weight(4, patient.id, 700, now),
        ReadingItem(5, patient.id, "59408-5", 140, "%", now),
        weight(6, patient.id, 80, now + timedelta(days=2)),
        weight(7, patient.id, 80, now - timedelta(days=800)),
        weight(8, stranger[0].id, 80, now),
        weight(9, patient.id, 80, now, device_serial="SCALE-9999"),
        ReadingItem(10, patient.id, "8867-4", 64, "/min", now - timedelta(hours=2)),
    ]
    result = await service.record_readings(session, network.gateway.principal, batch, ReadingSource.DEVICE)
    statuses = {o.index: (o.status, o.field) for o in result.outcomes}
    assert statuses == {
        0: ("created", None),
        1: ("refused", "code"),
        2: ("refused", "unit"),
        3: ("refused", "unit"),
        4: ("refused", "value"),
        5: ("refused", "value"),
        6: ("refused", "effective"),
        7: ("refused", "effective"),
        8: ("refused", "subject"),
        9: ("refused", "device"),
        10: ("created", None),
    }
    assert "700 kg" in result.outcomes[4].message and "SCALE-9999" in result.outcomes[9].message
    series = await service.readings_of(session, network.nurse.principal, enrolment.id)
    assert sorted((o.measure, o.value) for o in series) == [("heart_rate", 64.0), ("weight", 81.2)]


async def test_the_colleague_elsewhere_and_the_outsider_cannot_send_readings(
    session, network, patient, frozen
):
    await enrol(session, network, patient)
    for stranger in (network.colleague, network.outsider):
        result = await service.record_readings(
            session, stranger.principal, [weight(0, patient.id, 80, frozen.now)], ReadingSource.DEVICE
        )
        assert result.outcomes[0].status == "refused" and result.outcomes[0].field == "subject"
    # the treating cardiologist may type a reading (she has the patient in care)
    result = await service.record_readings(
        session,
        network.cardiologist.principal,
        [weight(0, patient.id, 80, frozen.now)],
        ReadingSource.PROFESSIONAL,
    )
    assert result.outcomes[0].status == "created"


async def test_triage_filter_then_interpretation_and_no_second_alert_for_the_same_reading(
    session, network, patient, frozen
):
    enrolment = await enrol(session, network, patient, overrides={"ic_pas_basse": {"below": 100}})
    low = ReadingItem(0, patient.id, "8480-6", 95, "mm[Hg]", frozen.now - timedelta(minutes=5))
    bus = RecordingBus()
    with use_event_bus(bus):
        [alert] = (
            await service.record_readings(session, network.gateway.principal, [low], ReadingSource.DEVICE)
        ).alerts
        await _commit(session)
    assert (
        alert.severity == "orange" and "en dessous de 100 mmHg" in alert.message
    )  # the patient's own threshold
    assert not alert.outside_hours and alert.seen_from is None
    with pytest.raises(Forbidden):
        await service.filter_alert(session, network.cardiologist.principal, alert.id)
    # a clinician of the team's hospital who is not in the monitoring team sees the patient, not the alerts' actions
    from telesante.directory.repository import OrganisationRepository
    from tests.factories import make_actor

    same_hospital = await make_actor(
        session, await OrganisationRepository(session).get(network.team_id), Role.EXPERT
    )
    with pytest.raises(Forbidden):
        await service.filter_alert(session, same_hospital.principal, alert.id)
    with pytest.raises(Forbidden):
        await service.worklist(session, same_hospital.principal)
    for stranger in (network.colleague, network.outsider):
        with pytest.raises(NotFound):
            await service.filter_alert(session, stranger.principal, alert.id)
    filtered = await service.filter_alert(
        session, network.nurse.principal, alert.id, "Patient joint, asymptomatique"
    )
    assert (
        filtered.status == AlertStatus.FILTERED
        and filtered.filtered_by_name == network.nurse.principal.display_name
    )
    with pytest.raises(Conflict):
        await service.filter_alert(session, network.nurse.principal, alert.id)
    closed = await service.interpret_alert(
        session,
        network.doctor.principal,
        alert.id,
        AlertInterpretation(
            interpretation="Hypotension sous sacubitril-valsartan", action=AlertAction.TREATMENT
        ),
    )
    assert closed.status == AlertStatus.CLOSED and closed.action == AlertAction.TREATMENT
    view = await service.get_enrolment(session, network.doctor.principal, enrolment.id)
    assert view.enrolment.colour == "green"
    # a later reading of another measure re-evaluates: the closed alert's reading does not alert again
    pulse = ReadingItem(0, patient.id, "8867-4", 70, "/min", frozen.now)
    assert (
        await service.record_readings(session, network.gateway.principal, [pulse], ReadingSource.DEVICE)
    ).alerts == []
    # a new low reading does
    frozen.advance(hours=1)
    lower = ReadingItem(0, patient.id, "8480-6", 88, "mm[Hg]", frozen.now)
    [again] = (
        await service.record_readings(session, network.gateway.principal, [lower], ReadingSource.DEVICE)
    ).alerts
    assert again.id != alert.id and "88 mmHg" in again.message


async def test_missing_weight_on_schedule_turns_the_patient_blue_and_green_is_acknowledged_at_once(
    session, network, patient, frozen
):
    quiet = await enrol(session, network, patient)
    other = await patients_service.register_patient(
        session,
        network.cardiologist.principal,
        patient_data(birth_family_name="Caron"),
    )
    weighed = await enrol(session, network, other[0], devices=[DeviceIn(serial="SCALE-0002", kind="Balance")])
    assert await service.evaluate_active(session) == 0
    for _day in range(3):
        frozen.advance(days=1)
        await service.record_readings(
            session,
            network.gateway.principal,
            [weight(0, other[0].id, 70.0, frozen.now)],
            ReadingSource.DEVICE,
        )
    assert await service.evaluate_active(session) == 1
    rows = {r.enrolment.id: r for r in await service.worklist(session, network.nurse.principal)}
    assert rows[quiet.id].enrolment.colour == "blue"
    assert "Aucune mesure de poids depuis le début du suivi" in rows[quiet.id].alerts[0].message
    assert rows[weighed.id].enrolment.colour == "green" and rows[weighed.id].unreviewed
    assert [r.enrolment.id for r in await service.worklist(session, network.nurse.principal)] == [
        quiet.id,
        weighed.id,
    ]
    assert await service.acknowledge_green(session, network.nurse.principal) == 1
    rows = {r.enrolment.id: r for r in await service.worklist(session, network.nurse.principal)}
    assert not rows[weighed.id].unreviewed and rows[quiet.id].enrolment.reviewed_at is None
    assert await service.evaluate_active(session) == 0  # the same missing data does not alert twice
    with pytest.raises(Forbidden):
        await service.worklist(session, network.cardiologist.principal)


async def test_the_pin_locks_the_link_after_five_errors_and_a_new_link_replaces_the_old(
    session, network, patient
):
    enrolment = await enrol(session, network, patient)
    _, token, pin = await service.issue_patient_link(session, network.nurse.principal, enrolment.id)
    wrong = "000000" if pin != "000000" else "111111"
    for left in (4, 3, 2, 1):
        with pytest.raises(InvalidInput, match=f"{left} essai"):
            await service.check_patient_pin(session, token, wrong)
    with pytest.raises(InvalidInput, match="bloqué"):
        await service.check_patient_pin(session, token, wrong)
    with pytest.raises(TooManyRequests):
        await service.check_patient_pin(session, token, pin)
    _, new_token, new_pin = await service.issue_patient_link(session, network.nurse.principal, enrolment.id)
    assert (await service.check_patient_pin(session, new_token, new_pin)).id == enrolment.id
    with pytest.raises(NotFound):
        await service.patient_enrolment(session, token)
    with pytest.raises(Forbidden):
        await service.issue_patient_link(
            session, (await _other_clinician(session, network)).principal, enrolment.id
        )


async def _other_clinician(session, network):
    """A clinician of the enrolling hospital who did not enrol the patient: has the patient in care, but neither
    runs the programme nor enrolled."""
    from telesante.directory.repository import OrganisationRepository
    from tests.factories import make_actor

    organisation_id = next(iter(network.cardiologist.principal.clinical_organisation_ids))
    return await make_actor(session, await OrganisationRepository(session).get(organisation_id))


async def test_overrides_are_checked_and_programmes_are_versioned(session, network, patient):
    with pytest.raises(InvalidInput, match="ic_inconnue"):
        await enrol(session, network, patient, overrides={"ic_inconnue": {"below": 80}})
    with pytest.raises(InvalidInput, match="hors des valeurs possibles"):
        await enrol(session, network, patient, overrides={"ic_pas_basse": {"below": 900}})
    with pytest.raises(InvalidInput, match="garde son sens"):
        await enrol(session, network, patient, overrides={"ic_poids_3j": {"change": -2}})
    revised = await service.create_programme(
        session,
        network.admin.principal,
        ProgrammeCreate(
            organisation_id=network.team_id,
            code="insuffisance_cardiaque",
            team_name="Équipe IC",
            days=[1, 2, 3, 4, 5, 6],
        ),
    )
    assert revised.version == 2 and not network.programme.current
    with pytest.raises(InvalidInput, match="remplacée"):
        await enrol(session, network, patient)
    enrolment = await enrol(session, network, patient, programme_id=revised.id)
    assert enrolment.programme_id == revised.id
    with pytest.raises(Forbidden):
        await service.create_programme(
            session,
            network.nurse.principal,
            ProgrammeCreate(organisation_id=network.team_id, code="diabete", team_name="Équipe"),
        )
    with pytest.raises(InvalidInput, match="inconnu"):
        await service.create_programme(
            session,
            network.admin.principal,
            ProgrammeCreate(organisation_id=network.team_id, code="insuffisance_renale", team_name="Équipe"),
        )


@pytest.mark.parametrize("held_at", ["0001-01-01T00:00", "9999-12-31T23:59"])
async def test_an_education_session_dated_out_of_any_calendar_is_refused_naming_it(
    session, network, patient, frozen, held_at
):
    """Year 1, read as Paris time, overflowed when moved to UTC (a 500): input models bound every date
    (kit.schemas), naming the field."""
    enrolment = await enrol(session, network, patient)
    with pytest.raises(InvalidInput) as refused:
        form = parse_input(EducationCreate, {"topic": "Alimentation", "held_at": held_at})
        await service.record_education(session, network.nurse.principal, enrolment.id, form)
    assert refused.value.field == "held_at" and "1800–2200" in refused.value.message
    assert (await service.get_enrolment(session, network.nurse.principal, enrolment.id)).education == []


async def test_education_sessions_and_end_of_follow_up(session, network, patient, frozen):
    enrolment = await enrol(session, network, patient)
    await service.record_education(
        session,
        network.nurse.principal,
        enrolment.id,
        EducationCreate(topic=network.programme.education_plan[1]),
    )
    with pytest.raises(InvalidInput):
        await service.record_education(
            session,
            network.nurse.principal,
            enrolment.id,
            EducationCreate(topic="Alimentation", held_at=frozen.now + timedelta(days=1)),
        )
    view = await service.get_enrolment(session, network.nurse.principal, enrolment.id)
    assert [e.topic for e in view.education] == [
        "Pesée quotidienne et conduite à tenir en cas de prise de poids"
    ]
    _, token, _ = await service.issue_patient_link(session, network.nurse.principal, enrolment.id)
    ended = await service.end_enrolment(
        session, network.doctor.principal, enrolment.id, "Fin de la prescription"
    )
    assert ended.status == EnrolmentStatus.ENDED
    with pytest.raises(NotFound):
        await service.patient_enrolment(session, token)
    result = await service.record_readings(
        session,
        network.gateway.principal,
        [weight(0, patient.id, 80, frozen.now, device_serial="SCALE-0001")],
        ReadingSource.DEVICE,
    )
    assert result.outcomes[0].field == "subject"  # no longer enrolled
    assert uuid.UUID(str(enrolment.id))


async def test_the_team_is_evaluated_every_hour_while_it_follows_patients(session, network, patient, frozen):
    """Enrolment starts the team's hourly timer (once, however many patients); the timer finds missing data by
    itself and comes back an hour later."""
    import telesante.monitoring.tasks  # noqa: F401 - registers the handler
    from telesante.jobs.repository import JobRepository
    from telesante.jobs.service import registered_kinds

    assert service.EVALUATE_JOB in registered_kinds()
    enrolment = await enrol(session, network, patient)
    jobs = JobRepository(session)
    first = await jobs.find_pending(service.EVALUATE_JOB, str(network.team_id))
    assert first is not None and first.run_at == frozen.now + service.EVALUATE_EVERY
    other = await patients_service.register_patient(
        session, network.cardiologist.principal, patient_data(birth_family_name="Caron")
    )
    frozen.advance(minutes=30)
    await enrol(session, network, other[0], devices=[])
    assert (await jobs.find_pending(service.EVALUATE_JOB, str(network.team_id))).run_at == first.run_at
    frozen.advance(days=3)
    await service.scheduled_evaluation(session, first.payload)
    view = await service.get_enrolment(session, network.nurse.principal, enrolment.id)
    assert view.enrolment.colour == "blue" and [a.rule_code for a in view.alerts] == ["ic_poids_absent"]
    again = await jobs.find_pending(service.EVALUATE_JOB, str(network.team_id))
    assert again is not None and again.run_at == frozen.now + service.EVALUATE_EVERY


async def test_a_patients_readings_come_from_every_programme_and_only_hers(session, network, patient, frozen):
    """The readings are found through the patient's enrolments (they are not indexed by patient): a patient followed
    for heart failure and for diabetes gets both programmes' readings, newest first; another patient's never."""
    diabetes = await service.create_programme(
        session,
        network.admin.principal,
        ProgrammeCreate(organisation_id=network.team_id, code="diabete", team_name="Équipe diabète"),
    )
    await enrol(session, network, patient)
    await enrol(session, network, patient, programme_id=diabetes.id, devices=[])
    other = await patients_service.register_patient(
        session,
        network.cardiologist.principal,
        patient_data(birth_family_name="Leroy", birth_given_names="Jeanne"),
    )
    await enrol(session, network, other[0], devices=[])
    now = frozen.now
    result = await service.record_readings(
        session,
        network.gateway.principal,
        [
            weight(0, patient.id, 78.0, now - timedelta(hours=3)),
            ReadingItem(1, patient.id, "2339-0", 1.1, "g/L", now - timedelta(hours=2)),
            weight(2, other[0].id, 64.0, now - timedelta(hours=1)),
        ],
        ReadingSource.DEVICE,
    )
    assert [outcome.status for outcome in result.outcomes] == ["created"] * 3
    readings = await service.patient_readings(session, network.nurse.principal, patient.id, None, None)
    assert [reading.measure for reading in readings] == ["glucose", "weight"]
    assert [reading.value for reading in readings] == [pytest.approx(110.0), 78.0]  # 1.1 g/L stored in mg/dL
    assert {reading.patient_id for reading in readings} == {patient.id}
    assert len({reading.enrolment_id for reading in readings}) == 2


async def test_in_one_batch_each_patient_is_judged_on_his_own_readings(session, network, patient, frozen):
    """A gateway's batch mixes patients: the rules read each enrolment's own window (read for the whole batch at once),
    so the patient whose weight rises gets the red alert, on his readings only, and the stable one gets none."""
    rising = await enrol(session, network, patient, devices=[])
    other, _ = await patients_service.register_patient(
        session,
        network.cardiologist.principal,
        patient_data(birth_family_name="Leroy", birth_given_names="Jeanne"),
    )
    stable = await enrol(session, network, other, devices=[])
    now = frozen.now
    result = await service.record_readings(
        session,
        network.gateway.principal,
        [
            weight(0, patient.id, 78.0, now - timedelta(hours=48)),
            weight(1, other.id, 70.0, now - timedelta(hours=48)),
            weight(2, patient.id, 80.6, now - timedelta(hours=1)),
            weight(3, other.id, 70.1, now - timedelta(hours=1)),
        ],
        ReadingSource.DEVICE,
    )
    assert [outcome.status for outcome in result.outcomes] == ["created"] * 4
    [alert] = result.alerts
    assert alert.enrolment_id == rising.id and alert.rule_code == "ic_poids_3j" and alert.severity == "red"
    assert [reading["value"] for reading in alert.readings] == [78.0, 80.6]
    own = {str(id_) for outcome in result.outcomes[::2] for id_ in outcome.observation_ids}
    assert {reading["id"] for reading in alert.readings} == own
    views = {
        view.enrolment.id: view.enrolment.colour
        for view in [
            await service.get_enrolment(session, network.nurse.principal, rising.id),
            await service.get_enrolment(session, network.nurse.principal, stable.id),
        ]
    }
    assert views == {rising.id: "red", stable.id: "green"}


async def test_a_patient_batched_with_a_longer_programme_is_judged_on_his_own_shorter_window(
    session, network, patient, frozen
):
    """The batch's window is read once, as far back as its longest programme needs (heart failure: 8 days); a diabetes
    patient (2 days) is judged on his own two days only. His hypoglycaemia of four days ago, outside them, raises no
    alert now because a heart-failure patient shares the batch: only his glucose's absence does."""
    diabetes = await service.create_programme(
        session,
        network.admin.principal,
        ProgrammeCreate(organisation_id=network.team_id, code="diabete", team_name="Équipe diabète"),
    )
    diabetic = await enrol(session, network, patient, programme_id=diabetes.id, devices=[])
    other, _ = await patients_service.register_patient(
        session,
        network.cardiologist.principal,
        patient_data(birth_family_name="Leroy", birth_given_names="Jeanne"),
    )
    await enrol(session, network, other, devices=[])
    frozen.advance(days=5)
    now = frozen.now
    # sent late by the glucometer: four days old on arrival, outside the diabetes window, so no hypoglycaemia alert
    glucose = ReadingItem(0, patient.id, "2339-0", 50, "mg/dL", now - timedelta(days=4))
    alone = await service.record_readings(session, network.gateway.principal, [glucose], ReadingSource.DEVICE)
    assert [o.status for o in alone.outcomes] == ["created"]
    assert [a.rule_code for a in alone.alerts] == ["dt_glycemie_absente"]
    episode = ReadingItem(
        1,
        patient.id,
        "symptome-malaise-hypoglycemie",
        False,
        None,
        now - timedelta(hours=1),
        system=clinical.LOCAL,
    )
    result = await service.record_readings(
        session,
        network.gateway.principal,
        [episode, weight(2, other.id, 70.0, now - timedelta(hours=2))],
        ReadingSource.DEVICE,
    )
    assert [outcome.status for outcome in result.outcomes] == ["created", "created"]
    view = await service.get_enrolment(session, network.nurse.principal, diabetic.id)
    assert [alert.rule_code for alert in view.alerts] == ["dt_glycemie_absente"]
    assert view.enrolment.colour == "blue"


async def test_every_questionnaire_answer_is_stored_under_its_own_code(session, network, patient, frozen):
    """Télésanté's own codes for the questionnaires' answers are up to 29 characters long
    (``symptome-malaise-hypoglycemie``): each is stored as sent, on both engines (PostgreSQL refused the three longest
    before migration 2026-12-07-1000, and with them the patient's whole questionnaire)."""
    await enrol(session, network, patient, devices=[])
    answers = [measure for measure in clinical.MEASURES if measure.is_answer]
    assert max(len(measure.code) for measure in answers) > 20
    now = frozen.now
    result = await service.record_readings(
        session,
        network.gateway.principal,
        [
            ReadingItem(index, patient.id, measure.code, True, None, now, system=clinical.LOCAL)
            for index, measure in enumerate(answers)
        ],
        ReadingSource.DEVICE,
    )
    assert [outcome.status for outcome in result.outcomes] == ["created"] * len(answers)
    stored = await service.patient_readings(session, network.nurse.principal, patient.id, None, None)
    assert sorted(reading.code for reading in stored) == sorted(measure.code for measure in answers)


@pytest.mark.parametrize("mismatch", ["patient", "device"])
async def test_the_database_refuses_a_reading_whose_patient_or_device_is_not_its_enrolments(
    session, network, patient, frozen, mismatch
):
    """Migration 2026-12-07-0010: a reading refers to (enrolment, patient) and (device, enrolment). The service never
    writes a reading filed under another patient, or with a device lent for another enrolment; the database refuses
    one all the same, on both engines. The consistent reading is stored."""
    from sqlalchemy.exc import IntegrityError

    from telesante.kit.models import uuid7
    from telesante.monitoring.repository import DeviceRepository, ObservationRepository

    own = await enrol(session, network, patient)
    other, _ = await patients_service.register_patient(
        session,
        network.cardiologist.principal,
        patient_data(birth_family_name="Leroy", birth_given_names="Jeanne"),
    )
    await enrol(session, network, other, devices=[DeviceIn(serial="SCALE-0002", kind="Balance connectée")])
    devices = await DeviceRepository(session).linked(["SCALE-0001", "SCALE-0002"])
    now = frozen.now

    def reading(key: str, patient_id, device_id) -> dict:
        return {
            "id": uuid7(),
            "enrolment_id": own.id,
            "patient_id": patient_id,
            "measure": "weight",
            "code": "29463-7",
            "value": 78.0,
            "unit": "kg",
            "sent_value": 78.0,
            "sent_unit": "kg",
            "effective_at": now - timedelta(hours=1),
            "device_id": device_id,
            "dedup_key": key,
        }

    common = {"received_at": now, "source": ReadingSource.DEVICE, "entered_by_name": ""}
    repo = ObservationRepository(session)
    stored = await repo.insert_new([reading("own", patient.id, devices["SCALE-0001"].id)], common)
    assert list(stored) == [(own.id, "own")]
    wrong = (
        reading("other-patient", other.id, devices["SCALE-0001"].id)
        if mismatch == "patient"
        else reading("other-device", patient.id, devices["SCALE-0002"].id)
    )
    with pytest.raises(IntegrityError):
        await repo.insert_new([wrong], common)


async def test_the_last_reading_is_the_latest_stored_and_the_enrolment_row_is_written_only_for_a_new_colour(
    session, network, patient, frozen, monkeypatch
):
    """The last reading's time is read from the readings (``Enrolment.last_reading_at``): an enrolment this session
    holds follows the readings it judges, one read afresh sees them too, and a reading that changes no colour leaves
    the enrolment's row as it was (migration 2026-12-07-0500)."""
    from telesante.monitoring.models import Enrolment
    from telesante.monitoring.repository import EnrolmentRepository

    enrolment = await enrol(session, network, patient)
    assert enrolment.last_reading_at is None
    now = frozen.now
    written: list[object] = []
    real = EnrolmentRepository.set_colours

    async def set_colours(self, changes):
        written.append(list(changes))
        await real(self, changes)

    monkeypatch.setattr(EnrolmentRepository, "set_colours", set_colours)
    readings = [weight(0, patient.id, 80.0, now - timedelta(hours=30))]
    await service.record_readings(session, network.gateway.principal, readings, ReadingSource.DEVICE)
    assert enrolment.last_reading_at == now - timedelta(hours=30)  # the object held moved with it
    late = [weight(0, patient.id, 80.1, now - timedelta(hours=40))]  # sent late: not the last one
    await service.record_readings(session, network.gateway.principal, late, ReadingSource.DEVICE)
    assert enrolment.last_reading_at == now - timedelta(hours=30)
    rise = [weight(0, patient.id, 83.0, now - timedelta(hours=1))]  # +3 kg: red
    await service.record_readings(session, network.gateway.principal, rise, ReadingSource.DEVICE)
    # green twice (nothing written), then red
    assert written == [[], [], [(enrolment.id, "red")]]
    session.expunge(enrolment)
    fresh = await session.get(Enrolment, enrolment.id)
    assert fresh is not enrolment
    assert (fresh.colour, fresh.last_reading_at) == ("red", now - timedelta(hours=1))
    assert enrolment.last_reading_at == now - timedelta(hours=1)
