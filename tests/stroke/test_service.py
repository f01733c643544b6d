"""The stroke pathway through its service: the alert pages the neurologist on duty (escalating to the backup), the
case's clocks come from the server, NIHSS/measures/checklist are checked, the decision obeys the checklist and
computes the dose, a thrombectomy centre sees the case, and the three actors see what they should."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from telesante.directory.models import Role
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.oncall import service as oncall
from telesante.patients.models import IdentityStatus, Sex
from telesante.requests import service as requests_service
from telesante.stroke import service
from telesante.stroke.models import CaseStatus, Disposition, Milestone, NihssRole, TransportMode
from telesante.stroke.schemas import (
    AlertCreate,
    ChecklistUpdate,
    DecisionCreate,
    MeasuresUpdate,
    MilestoneStamp,
    NihssCreate,
    ProvisionalIdentity,
)
from tests.factories import make_actor
from tests.stroke.conftest import T0

# The night case: emergency doctor alerts at 02:10 (Paris) for an onset at 01:30, arrival 01:55.
ONSET = T0 - timedelta(minutes=40)
ARRIVAL = T0 - timedelta(minutes=15)
NIHSS_14 = {
    "1a": 0, "1b": 1, "1c": 0, "2": 1, "3": 2, "4": 2, "5a": 0, "5b": 3,
    "6a": 0, "6b": 2, "7": 0, "8": 1, "9": 2, "10": 0, "11": 0,
}  # fmt: skip
CLEAR_CHECKLIST = {
    "hemorragie_imagerie": "non",
    "avc_trauma_3_mois": "non",
    "hemorragie_digestive": "non",
}


def alert(patient_id, **overrides) -> AlertCreate:
    values = dict(
        patient_id=patient_id,
        onset_known=True,
        last_known_well_at=ONSET,
        arrival_at=ARRIVAL,
        callback_phone="02 96 44 56 00",
        summary="Hémiplégie droite et aphasie.",
    )
    values.update(overrides)
    return AlertCreate(**values)


async def _alerted(session, settings, network, patient):
    return await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))


async def _taken(session, settings, network, patient):
    case = await _alerted(session, settings, network, patient)
    return await service.acknowledge(session, network.neurologist.principal, case.id)


async def _answer_every_absolute(session, settings, network, case, answer="non"):
    from telesante.stroke import clinical

    answers = {c.code: answer for c in clinical.CONTRAINDICATIONS if c.absolute}
    return await service.record_checklist(
        session, network.neurologist.principal, settings, case.id, ChecklistUpdate(answers=answers)
    )


async def test_the_alert_pages_the_neurologist_on_duty_and_escalates_to_the_backup(
    session, settings, network, patient, frozen
):
    case = await _alerted(session, settings, network, patient)
    assert case.status == CaseStatus.ALERT and case.alert_at == T0
    request = await requests_service.get_request(session, network.emergency.principal, case.request_id)
    assert request["request"].status == "sent" and request["request"].urgent
    assert "urgence" in request["request"].emergency_exemption  # no consent recorded: documented emergency
    [page] = await oncall.list_pages(session, "tele_request", case.request_id)
    assert page.professional_id == network.neurologist.professional.id
    assert page.escalate_at is not None and page.escalate_at - page.paged_at == timedelta(minutes=3)
    # 3 minutes without acknowledgement: the backup is paged
    frozen.advance(minutes=3, seconds=1)
    await oncall.escalate_page(session, {"page_id": str(page.id), "target": page.target})
    pages = await oncall.list_pages(session, "tele_request", case.request_id)
    assert network.backup.professional.id in {p.professional_id for p in pages}
    # the backup takes it: the case is theirs, stamped with the server's time
    frozen.advance(minutes=1)
    taken = await service.acknowledge(session, network.backup.principal, case.id)
    assert taken.neurologist_name == network.backup.principal.display_name
    view = await service.case_view(session, network.backup.principal, settings, case.id)
    assert view.milestones[Milestone.ACKNOWLEDGED].at == T0 + timedelta(minutes=4, seconds=1)
    assert view.milestones[Milestone.ARRIVAL].at == ARRIVAL
    with pytest.raises(Conflict):
        await service.acknowledge(session, network.neurologist.principal, case.id)


async def test_clocks_windows_and_counters_come_from_the_server(session, settings, network, patient, frozen):
    case = await _taken(session, settings, network, patient)
    view = await service.case_view(session, network.neurologist.principal, settings, case.id)
    iv = {w.code: w for w in view.windows}["iv"]
    assert iv.deadline == ONSET + timedelta(minutes=270) and iv.state == "ok"
    assert iv.remaining_minutes == 230
    door_to_needle = {c.code: c for c in view.counters}["door_to_needle"]
    assert door_to_needle.minutes == 15 and door_to_needle.running and door_to_needle.target_minutes == 60
    frozen.advance(minutes=205)  # 25 minutes left of the 4 h 30
    view = await service.case_view(session, network.neurologist.principal, settings, case.id)
    assert {w.code: w for w in view.windows}["iv"].state == "near"
    assert {c.code: c for c in view.counters}["door_to_needle"].state == "passed"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"last_known_well_at": T0 + timedelta(minutes=5)}, "last_known_well_at"),  # in the future
        ({"last_known_well_at": ARRIVAL + timedelta(minutes=1)}, "last_known_well_at"),  # after arrival
        ({"arrival_at": T0 + timedelta(minutes=10)}, "arrival_at"),
    ],
)
async def test_impossible_times_are_refused_and_nothing_is_written(
    session, settings, network, patient, overrides, field
):
    with pytest.raises(InvalidInput) as refused:
        await service.create_alert(
            session, network.emergency.principal, settings, alert(patient.id, **overrides)
        )
    assert refused.value.field == field
    assert await service.list_cases(session, network.emergency.principal) == []


def test_the_alert_form_needs_an_onset_or_the_wake_up_choice_and_one_patient():
    with pytest.raises(ValueError, match="début des symptômes"):
        AlertCreate(onset_known=True, patient_id=uuid.uuid4(), callback_phone="0296445600")
    with pytest.raises(ValueError, match="identité provisoire"):
        AlertCreate(onset_known=False, callback_phone="0296445600")
    wake_up = AlertCreate(
        onset_known=False,
        onset_note="Réveil avec le déficit",
        provisional_identity=ProvisionalIdentity(
            birth_family_name="Inconnu", birth_given_names="Homme", birth_date=date(1950, 1, 1), sex=Sex.M
        ),
        callback_phone="02 96 44 56 00",
    )
    assert wake_up.last_known_well_at is None


async def test_a_wake_up_stroke_with_a_provisional_identity(session, settings, network):
    data = AlertCreate(
        onset_known=False,
        onset_note="Réveil avec le déficit ; vu normal au coucher à 23 h",
        last_known_well_at=T0 - timedelta(hours=3),
        provisional_identity=ProvisionalIdentity(
            birth_family_name="Inconnu", birth_given_names="Homme", birth_date=date(1950, 1, 1), sex=Sex.M
        ),
        callback_phone="02 96 44 56 00",
    )
    case = await service.create_alert(session, network.emergency.principal, settings, data)
    view = await service.case_view(session, network.emergency.principal, settings, case.id)
    assert view.identity_status == IdentityStatus.PROVISOIRE.value
    assert not view.case.onset_known and view.case.onset_note.startswith("Réveil")
    unknown = AlertCreate(**{**data.model_dump(), "last_known_well_at": None})
    other = await service.create_alert(session, network.emergency.principal, settings, unknown)
    view = await service.case_view(session, network.emergency.principal, settings, other.id)
    assert {w.state for w in view.windows} == {"unknown"}


async def test_nihss_by_both_sides_is_kept_and_checked(session, settings, network, patient, frozen):
    case = await _alerted(session, settings, network, patient)
    ed = await service.record_nihss(
        session, network.emergency.principal, case.id, NihssCreate(items=NIHSS_14)
    )
    assert ed.role == NihssRole.EMERGENCY and ed.total == 14
    with pytest.raises(NotFound):  # not the case of a neurologist who did not take it
        await service.record_nihss(session, network.colleague.principal, case.id, NihssCreate(items=NIHSS_14))
    frozen.advance(minutes=6)
    await service.acknowledge(session, network.neurologist.principal, case.id)
    with pytest.raises(InvalidInput) as refused:
        await service.record_nihss(
            session, network.neurologist.principal, case.id, NihssCreate(items={**NIHSS_14, "5a": 5})
        )
    assert refused.value.field == "items.5a"
    neuro = await service.record_nihss(
        session, network.neurologist.principal, case.id, NihssCreate(items={**NIHSS_14, "9": 3})
    )
    assert neuro.role == NihssRole.NEUROLOGIST and neuro.total == 15
    view = await service.case_view(session, network.neurologist.principal, settings, case.id)
    assert [n.total for n in view.nihss] == [14, 15]
    assert view.latest_nihss[NihssRole.EMERGENCY].total == 14


async def test_thrombolysis_waits_for_the_checklist_and_computes_the_dose(
    session, settings, network, patient
):
    case = await _taken(session, settings, network, patient)
    neuro = network.neurologist.principal
    decision = DecisionCreate(disposition=Disposition.THROMBOLYSIS, agent="alteplase")
    with pytest.raises(Conflict) as unanswered:
        await service.decide(session, neuro, settings, case.id, decision)
    assert unanswered.value.field == "checklist"
    await service.record_measures(
        session,
        network.emergency.principal,
        case.id,
        MeasuresUpdate(
            systolic=172, diastolic=95, glucose_mmol=6.4, platelets=230_000, inr=1.0, weight_kg=70,
            anticoagulant="aucun",
        ),
    )  # fmt: skip
    result = await _answer_every_absolute(session, settings, network, case)
    assert result.clear
    decided = await service.decide(session, neuro, settings, case.id, decision)
    assert decided.status == CaseStatus.DECIDED and decided.disposition == Disposition.THROMBOLYSIS
    assert (decided.dose_mg, decided.bolus_mg, decided.infusion_mg) == (63.0, 6.3, 56.7)
    with pytest.raises(Conflict):  # once
        await service.decide(session, neuro, settings, case.id, decision)
    needle = await service.stamp_milestone(
        session, network.emergency.principal, case.id, MilestoneStamp(kind=Milestone.NEEDLE)
    )
    view = await service.case_view(session, neuro, settings, case.id)
    assert needle.at == view.now
    door_to_needle = {c.code: c for c in view.counters}["door_to_needle"]
    assert door_to_needle.minutes == 15 and not door_to_needle.running and door_to_needle.state == "ok"


async def test_a_contraindication_blocks_thrombolysis_unless_overridden_in_writing(
    session, settings, network, patient
):
    case = await _taken(session, settings, network, patient)
    neuro = network.neurologist.principal
    await service.record_measures(
        session, neuro, case.id, MeasuresUpdate(inr=2.1, weight_kg=82, platelets=250_000)
    )
    await _answer_every_absolute(session, settings, network, case)  # the measured INR wins over "non"
    with pytest.raises(Conflict) as blocked:
        await service.decide(
            session,
            neuro,
            settings,
            case.id,
            DecisionCreate(disposition=Disposition.THROMBOLYSIS, agent="alteplase"),
        )
    assert blocked.value.field == "override_reason" and "INR" in blocked.value.message
    decided = await service.decide(
        session,
        neuro,
        settings,
        case.id,
        DecisionCreate(
            disposition=Disposition.THROMBOLYSIS,
            agent="tenecteplase",
            override_reason="INR mesuré sur prélèvement hémolysé, contrôle à 1,1 au lit du patient.",
        ),
    )
    assert decided.overridden_items == ["inr"] and decided.dose_mg == 20.5


async def test_the_dose_needs_the_weight(session, settings, network, patient):
    case = await _taken(session, settings, network, patient)
    await _answer_every_absolute(session, settings, network, case)
    with pytest.raises(InvalidInput) as refused:
        await service.decide(
            session,
            network.neurologist.principal,
            settings,
            case.id,
            DecisionCreate(disposition=Disposition.THROMBOLYSIS, agent="alteplase"),
        )
    assert refused.value.field == "weight_kg"


async def test_a_thrombectomy_transfer_lets_the_receiving_centre_see_the_case(
    session, settings, network, patient
):
    case = await _taken(session, settings, network, patient)
    interventional = await make_actor(session, network.thrombectomy_centre, Role.EXPERT)
    with pytest.raises(NotFound):
        await service.get_case(session, interventional.principal, case.id)
    with pytest.raises(InvalidInput) as refused:
        await service.decide(
            session,
            network.neurologist.principal,
            settings,
            case.id,
            DecisionCreate(
                disposition=Disposition.TRANSFER, thrombectomy=True, reasons="Occlusion carotidienne"
            ),
        )
    assert refused.value.field == "receiving_organisation_id"
    await service.decide(
        session,
        network.neurologist.principal,
        settings,
        case.id,
        DecisionCreate(
            disposition=Disposition.TRANSFER,
            thrombectomy=True,
            reasons="Sous AOD depuis ce matin ; occlusion de l'artère cérébrale moyenne droite",
            receiving_organisation_id=network.thrombectomy_centre.id,
            transport_mode=TransportMode.HELICOPTER,
        ),
    )
    seen = await service.case_view(session, interventional.principal, settings, case.id)
    assert seen.case.thrombectomy and seen.patient_name  # the case and the patient's record
    assert not seen.party  # not of the act: it does not join the call
    assert (await service.case_view(session, network.neurologist.principal, settings, case.id)).party
    assert [c.id for c in await service.list_cases(session, interventional.principal)] == [case.id]
    with pytest.raises(Conflict):  # no needle without thrombolysis
        await service.stamp_milestone(
            session, network.emergency.principal, case.id, MilestoneStamp(kind=Milestone.NEEDLE)
        )
    assert {c.code: c for c in seen.counters}["door_to_needle"].state == "unknown"


async def test_milestones_are_stamped_once_and_corrections_need_a_reason(
    session, settings, network, patient, frozen
):
    case = await _alerted(session, settings, network, patient)
    ed = network.emergency.principal
    stamped = await service.stamp_milestone(
        session, ed, case.id, MilestoneStamp(kind=Milestone.IMAGING_AVAILABLE)
    )
    assert stamped.at == T0
    with pytest.raises(Conflict):
        await service.stamp_milestone(session, ed, case.id, MilestoneStamp(kind=Milestone.IMAGING_AVAILABLE))
    with pytest.raises(InvalidInput) as refused:
        await service.stamp_milestone(session, ed, case.id, MilestoneStamp(kind=Milestone.DECISION))
    assert refused.value.field == "kind"
    with pytest.raises(InvalidInput) as refused:
        await service.stamp_milestone(
            session, ed, case.id, MilestoneStamp(kind=Milestone.VIDEO_STARTED, at=T0 - timedelta(minutes=2))
        )
    assert refused.value.field == "correction_reason"
    with pytest.raises(InvalidInput) as refused:
        await service.stamp_milestone(
            session,
            ed,
            case.id,
            MilestoneStamp(
                kind=Milestone.VIDEO_STARTED, at=T0 + timedelta(minutes=2), correction_reason="oubli"
            ),
        )
    assert refused.value.field == "at"
    corrected = await service.stamp_milestone(
        session,
        ed,
        case.id,
        MilestoneStamp(kind=Milestone.VIDEO_STARTED, at=T0 - timedelta(minutes=2), correction_reason="oubli"),
    )
    assert corrected.correction_reason == "oubli" and corrected.recorded_at == T0


async def test_three_actors(session, settings, network, patient):
    case = await _alerted(session, settings, network, patient)
    # the treating side and the paged neurologist see it
    assert (await service.get_case(session, network.ed_nurse.principal, case.id)).id == case.id
    assert (await service.get_case(session, network.neurologist.principal, case.id)).id == case.id
    for stranger in (network.colleague, network.outsider):
        with pytest.raises(NotFound):
            await service.case_view(session, stranger.principal, settings, case.id)
        with pytest.raises(NotFound):
            await service.record_measures(session, stranger.principal, case.id, MeasuresUpdate(weight_kg=70))
        assert await service.list_cases(session, stranger.principal) == []
    with pytest.raises(Forbidden):  # an emergency colleague does not decide
        await service.decide(
            session,
            network.ed_nurse.principal,
            settings,
            case.id,
            DecisionCreate(disposition=Disposition.MONITORING, reasons="NIHSS 2, pas de thrombolyse"),
        )


async def test_a_provisional_identity_obeys_the_registry_rules(session, settings, network):
    data = AlertCreate(
        onset_known=False,
        provisional_identity=ProvisionalIdentity(
            birth_family_name="X3 Æ12", birth_given_names="Homme", birth_date=date(1950, 1, 1), sex=Sex.M
        ),
        callback_phone="02 96 44 56 00",
    )
    with pytest.raises(InvalidInput) as refused:
        await service.create_alert(session, network.emergency.principal, settings, data)
    assert refused.value.field == "birth_family_name"
    assert await service.list_cases(session, network.emergency.principal) == []


class RecordingBus:
    def __init__(self):
        self.events = []

    async def publish(self, event) -> None:
        self.events.append(event)


async def _commit(session) -> None:
    """What ``get_session`` does at the end of a request: commit, then run the after-commit hooks."""
    await session.commit()
    for callback in session.info.pop("after_commit", []):
        await callback()


async def test_only_the_page_rings_and_the_receiving_centre_is_alerted_on_transfer(
    session, settings, network, patient
):
    """The alert's page to the neurologist on duty is the one urgent event (a second alarm would cover it); the
    receiving centre, and only it, gets an urgent event when a thrombectomy transfer is decided."""
    from telesante.events.service import use_event_bus

    interventional = await make_actor(session, network.thrombectomy_centre, Role.EXPERT)
    bus = RecordingBus()
    with use_event_bus(bus):
        case = await _alerted(session, settings, network, patient)
        await _commit(session)
        urgent = [e for e in bus.events if e.urgent]
        assert [e.type for e in urgent] == ["oncall.page"]
        assert urgent[0].recipients == {network.neurologist.account.id}
        alert_event = next(e for e in bus.events if e.type == "stroke.alert")
        assert network.neurologist.account.id in alert_event.recipients
        assert interventional.account.id not in alert_event.recipients

        bus.events.clear()
        await service.acknowledge(session, network.neurologist.principal, case.id)
        await service.decide(
            session,
            network.neurologist.principal,
            settings,
            case.id,
            DecisionCreate(
                disposition=Disposition.TRANSFER,
                thrombectomy=True,
                reasons="Occlusion de l'artère cérébrale moyenne droite",
                receiving_organisation_id=network.thrombectomy_centre.id,
                transport_mode=TransportMode.HELICOPTER,
            ),
        )
        await _commit(session)
    transfer = [e for e in bus.events if e.urgent]
    assert [e.type for e in transfer] == ["stroke.transfer"]
    assert transfer[0].recipients == {interventional.account.id}
    assert transfer[0].data["case_id"] == str(case.id)
    assert (
        "thrombectomie" in transfer[0].data["label"]
        and patient.birth_family_name not in transfer[0].data["label"]
    )
