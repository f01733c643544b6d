"""The second half of the stroke pathway through the service layer: the case's video call, the head CT joining the
case by itself, the compte rendu written from the case and signed, and the monthly quality dashboard."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from telesante.imaging import service as imaging_service
from telesante.imaging.models import ImagingStudy, PatientMatch
from telesante.imaging.phantom import head_ct
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.requests.models import RequestStatus
from telesante.requests.repository import RequestRepository
from telesante.requests.schemas import ReportCreate
from telesante.storage.blobs import FilesystemBlobStore
from telesante.stroke import quality, service
from telesante.stroke.models import CaseStatus, Disposition, Milestone, TransportMode
from telesante.stroke.schemas import DecisionCreate, ImagingExpected, MeasuresUpdate, NihssCreate
from telesante.video import service as video_service
from telesante.video.models import RoomStatus
from tests.stroke.test_service import NIHSS_14, _answer_every_absolute, _taken, alert


@pytest.fixture
def store(tmp_path):
    return FilesystemBlobStore(tmp_path / "blobs")


async def _receive_ct(session, store, organisation_id, **header):
    """The scanner of the emergency department's hospital sends a 3-slice head CT (as C-STORE does)."""
    study = None
    for data in head_ct(3, **header):
        study = (
            await imaging_service.ingest_instance(
                session, store, data, organisation_id=organisation_id, received_from="dicom:CT_GUINGAMP"
            )
        ).study
    return study


LE_BIHAN = {"patient_name": "LE BIHAN^ANNE", "birth_date": "19540312", "sex": "F", "patient_id": "X-1"}


# --- video ---------------------------------------------------------------------------------------------------


async def test_the_video_opens_once_the_neurologist_took_the_alert(
    session, settings, network, patient, frozen
):
    case = await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    with pytest.raises(Conflict, match="pris l'alerte"):
        await service.open_video(session, network.emergency.principal, case.id)
    await service.acknowledge(session, network.neurologist.principal, case.id)
    frozen.advance(minutes=2)
    room = await service.open_video(session, network.neurologist.principal, case.id)
    assert room.request_id == case.request_id and room.appointment_id is None
    assert room.host_professional_id == network.neurologist.professional.id
    view = await service.case_view(session, network.emergency.principal, settings, case.id)
    assert view.milestones[Milestone.VIDEO_STARTED].at == frozen.now
    assert view.room is not None and view.room.id == room.id
    # the emergency doctor joins the same call (no second stamp), as a professional waiting to be admitted
    frozen.advance(minutes=1)
    again = await service.open_video(session, network.emergency.principal, case.id)
    assert again.id == room.id
    seat = await video_service.enter_as_professional(session, network.emergency.principal, room.id)
    assert seat.role == "professional"
    host = await video_service.enter_as_professional(session, network.neurologist.principal, room.id)
    assert host.role == "host"
    view = await service.case_view(session, network.emergency.principal, settings, case.id)
    assert view.milestones[Milestone.VIDEO_STARTED].at == frozen.now - timedelta(minutes=1)
    # neither a clinician of another hospital nor an outsider reaches the case or its call
    for who in (network.colleague, network.outsider):
        with pytest.raises(NotFound):
            await service.open_video(session, who.principal, case.id)
        with pytest.raises(NotFound):
            await video_service.enter_as_professional(session, who.principal, room.id)
    # the video compte rendu of appointments does not apply: the case's report is signed in the case
    with pytest.raises(Conflict, match="dossier de l'acte"):
        await video_service.report_draft(session, network.neurologist.principal, room.id)


# --- images --------------------------------------------------------------------------------------------------


async def test_the_ct_with_the_case_accession_number_joins_the_case(
    session, settings, network, patient, store, frozen
):
    case = await service.create_alert(
        session, network.emergency.principal, settings, alert(patient.id, accession_number="AVC-0042")
    )
    frozen.advance(minutes=9)
    other = await _receive_ct(session, store, case.organisation_id, accession_number="AVC-0041", **LE_BIHAN)
    study = await _receive_ct(session, store, case.organisation_id, accession_number="AVC-0042", **LE_BIHAN)
    view = await service.case_view(session, network.emergency.principal, settings, case.id)
    assert [s.study_uid for s in view.studies] == [study.study_uid]  # not the other exam number
    assert study.patient_id == patient.id and study.patient_match == PatientMatch.REQUEST
    assert other.patient_id is None  # the other exam waits for identity vigilance
    stamp = view.milestones[Milestone.IMAGING_AVAILABLE]
    assert stamp.at == frozen.now and stamp.recorded_by_name == service.IMAGING_SYSTEM_NAME
    door_to_imaging = next(c for c in view.counters if c.code == "door_to_imaging")
    assert (door_to_imaging.minutes, door_to_imaging.running) == (24, False)  # arrival 01:55 → 02:19
    # the neurologist (party to the request) sees it in the viewer; an outsider never
    await service.acknowledge(session, network.neurologist.principal, case.id)
    shown = await service.case_study(session, network.neurologist.principal, case.id, None)
    assert shown.study.study_uid == study.study_uid
    with pytest.raises(NotFound):
        await service.case_study(session, network.outsider.principal, case.id, None)
    with pytest.raises(NotFound):
        await service.case_study(session, network.neurologist.principal, case.id, other.study_uid)


async def test_a_matching_exam_number_with_another_identity_joins_nothing(
    session, settings, network, patient, store
):
    case = await service.create_alert(
        session, network.emergency.principal, settings, alert(patient.id, accession_number="AVC-0042")
    )
    wrong = {
        **LE_BIHAN,
        "birth_date": "19540313",
    }  # a typing error on the scanner: not the same person surely
    study = await _receive_ct(session, store, case.organisation_id, accession_number="AVC-0042", **wrong)
    view = await service.case_view(session, network.emergency.principal, settings, case.id)
    assert view.studies == [] and Milestone.IMAGING_AVAILABLE not in view.milestones
    assert study.patient_id is None and study.patient_match == PatientMatch.PENDING


async def test_without_exam_number_only_a_surely_identified_study_joins(
    session, settings, network, patient, store
):
    case = await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    # traits agree but no exam number and no sure identifier: a study of a namesake must not join
    await _receive_ct(session, store, case.organisation_id, accession_number="", **LE_BIHAN)
    assert (await service.case_view(session, network.emergency.principal, settings, case.id)).studies == []
    # the emergency department gives the exam number afterwards; the next study sent with it joins
    await service.set_expected_imaging(
        session, network.emergency.principal, case.id, ImagingExpected(accession_number=" AVC-7 ")
    )
    study = await _receive_ct(session, store, case.organisation_id, accession_number="AVC-7", **LE_BIHAN)
    view = await service.case_view(session, network.emergency.principal, settings, case.id)
    assert [s.id for s in view.studies] == [study.id] and view.case.accession_number == "AVC-7"
    with pytest.raises(Forbidden):  # the exam number belongs to the emergency side
        await service.set_expected_imaging(
            session, network.neurologist.principal, case.id, ImagingExpected(accession_number="X")
        )


async def test_a_ct_sent_before_the_exam_number_was_typed_joins_when_it_is(
    session, settings, network, patient, store, frozen
):
    case = await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    frozen.advance(minutes=6)
    early = await _receive_ct(session, store, case.organisation_id, accession_number="AVC-9", **LE_BIHAN)
    namesake = await _receive_ct(
        session, store, case.organisation_id, accession_number="AVC-9", **{**LE_BIHAN, "sex": "M"}
    )  # same number, another sex: not surely the patient, joins nothing
    assert (await service.case_view(session, network.emergency.principal, settings, case.id)).studies == []
    frozen.advance(minutes=3)
    await service.set_expected_imaging(
        session, network.emergency.principal, case.id, ImagingExpected(accession_number="AVC-9")
    )
    view = await service.case_view(session, network.emergency.principal, settings, case.id)
    assert [s.id for s in view.studies] == [early.id] and namesake.patient_id is None
    assert view.milestones[Milestone.IMAGING_AVAILABLE].at == frozen.now  # when it joined the case


async def test_a_study_from_another_hospital_never_joins(session, settings, network, patient, store):
    case = await service.create_alert(
        session, network.emergency.principal, settings, alert(patient.id, accession_number="AVC-0042")
    )
    elsewhere = network.colleague.principal.clinical_organisation_ids
    await _receive_ct(session, store, next(iter(elsewhere)), accession_number="AVC-0042", **LE_BIHAN)
    assert (await service.case_view(session, network.emergency.principal, settings, case.id)).studies == []


# --- compte rendu --------------------------------------------------------------------------------------------


async def _decided(session, settings, network, patient, frozen):
    case = await _taken(session, settings, network, patient)
    await service.record_nihss(session, network.emergency.principal, case.id, NihssCreate(items=NIHSS_14))
    await service.record_measures(
        session,
        network.emergency.principal,
        case.id,
        MeasuresUpdate(
            systolic=165, diastolic=90, glucose_mmol=6.4, platelets=230_000, inr=1.0, weight_kg=70
        ),
    )
    await _answer_every_absolute(session, settings, network, case)
    frozen.advance(minutes=10)
    await service.decide(
        session,
        network.neurologist.principal,
        settings,
        case.id,
        DecisionCreate(
            disposition=Disposition.THROMBOLYSIS,
            agent="alteplase",
            thrombectomy=True,
            receiving_organisation_id=network.thrombectomy_centre.id,
            transport_mode=TransportMode.SMUR,
        ),
    )
    return case


async def test_the_report_is_written_from_the_case_and_signed_by_the_neurologist(
    session, settings, network, patient, frozen, store
):
    case = await _decided(session, settings, network, patient, frozen)
    draft = await service.report_draft(session, network.neurologist.principal, settings, case.id)
    conclusion = draft["conclusion"]
    for expected in (
        "NIHSS (urgentiste",
        ": 14.",
        "PA 165/90 mmHg",
        "poids 70 kg",
        "Thrombolyse intraveineuse",
        "Thrombectomie : indiquée.",
        "CHU de Rennes",
        "SMUR terrestre",
        "Contre-indications absolues à la thrombolyse : aucune retenue.",
    ):
        assert expected in conclusion, expected
    assert draft["prescriptions"].startswith(  # 0.9 mg/kg × 70 kg, 10 % as the bolus
        "Thrombolyse intraveineuse : Altéplase 63,0 mg : bolus 6,3 mg"
    )
    assert [p["role"] for p in draft["participants"]] == [
        "médecin urgentiste requérant",
        "neurologue de garde (télé-expertise)",
    ]
    data = ReportCreate(
        conclusion=conclusion,
        prescriptions=draft["prescriptions"],
        participants=draft["participants"],
        performed_at=draft["performed_at"],
        technical_incident=False,
    )
    with pytest.raises(Forbidden):  # the emergency doctor does not sign the neurologist's opinion
        await service.sign_report(session, network.emergency.principal, settings, store, case.id, data)
    closed = await service.sign_report(session, network.neurologist.principal, settings, store, case.id, data)
    assert closed.status == CaseStatus.CLOSED and closed.closed_at == frozen.now
    request = await RequestRepository(session).get(case.request_id)
    assert request.status == RequestStatus.CLOSED
    assert (
        request.expert_answers["decision"] == "thrombolysis"
        and request.expert_answers["thrombectomy"] is True
    )
    report = await RequestRepository(session).get_report(case.request_id)
    assert report.signed_by_name == network.neurologist.principal.display_name and report.pdf_blob_key
    with pytest.raises(Conflict, match="clos"):
        await service.sign_report(session, network.neurologist.principal, settings, store, case.id, data)
    with pytest.raises(Conflict, match="clos"):
        await service.record_measures(
            session, network.emergency.principal, case.id, MeasuresUpdate(weight_kg=71)
        )


async def test_no_report_before_the_decision_and_the_call_closes_with_it(
    session, settings, network, patient, frozen, store
):
    case = await _taken(session, settings, network, patient)
    room = await service.open_video(session, network.neurologist.principal, case.id)
    with pytest.raises(Conflict, match="décision"):
        await service.report_draft(session, network.neurologist.principal, settings, case.id)
    frozen.advance(minutes=5)
    await service.decide(
        session,
        network.neurologist.principal,
        settings,
        case.id,
        DecisionCreate(disposition=Disposition.MONITORING, reasons="Déficit régressif, NIHSS 1"),
    )
    draft = await service.report_draft(session, network.neurologist.principal, settings, case.id)
    assert draft["prescriptions"] == "aucune"
    await service.sign_report(
        session,
        network.neurologist.principal,
        settings,
        store,
        case.id,
        ReportCreate(
            conclusion=draft["conclusion"],
            prescriptions="aucune",
            participants=draft["participants"],
            performed_at=draft["performed_at"],
            technical_incident=False,
        ),
    )
    await session.refresh(room)
    assert room.status == RoomStatus.CLOSED
    with pytest.raises(Conflict):
        await video_service.enter_as_professional(session, network.neurologist.principal, room.id)


# --- quality dashboard ---------------------------------------------------------------------------------------


def test_distribution_quartiles_and_targets():
    d = quality.distribution([30, 45, 50, 70, 90], target=60)
    assert (d.count, d.median, d.p25, d.p75, d.minimum, d.maximum) == (5, 50.0, 45.0, 70.0, 30, 90)
    assert (d.within_target, d.share_within_target) == (3, 0.6)
    one = quality.distribution([42], target=25)
    assert (one.median, one.p25, one.p75, one.within_target) == (42.0, 42.0, 42.0, 0)
    empty = quality.distribution([], target=25)
    assert (empty.count, empty.median, empty.share_within_target) == (0, None, None)


async def test_the_dashboard_counts_the_month_of_one_hospital(
    session, settings, network, patient, frozen, store
):
    case = await _decided(session, settings, network, patient, frozen)  # thrombolysis + thrombectomy
    frozen.advance(minutes=5)
    await service.stamp_milestone(
        session, network.emergency.principal, case.id, service.MilestoneStamp(kind=Milestone.NEEDLE)
    )
    # a second alert the same night, decided « monitoring », and one the month before (not counted)
    second = await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    frozen.advance(minutes=4)
    await service.acknowledge(session, network.neurologist.principal, second.id)
    board = await service.dashboard(session, network.emergency.principal, settings, None, "2026-12")
    q = board.quality
    assert (board.organisation_id, board.month_label) == (case.organisation_id, "décembre 2026")
    assert (q.alerts, q.thrombolyses, q.thrombectomies, q.undecided) == (2, 1, 1, 1)
    assert q.thrombolysis_rate == 0.5
    # onset 01:30, arrival 01:55, needle at 02:25 (alert 02:10, decision +10 min, needle +5 min)
    assert (q.onset_to_needle.median, q.door_to_needle.median) == (55.0, 30.0)
    assert (q.door_to_needle.within_target, q.door_to_needle.count) == (1, 1)
    assert (q.alert_to_acknowledged.count, q.alert_to_acknowledged.minimum) == (2, 0)
    assert q.alert_to_acknowledged.maximum == 4
    november = await service.dashboard(session, network.emergency.principal, settings, None, "2026-11")
    assert november.quality.alerts == 0 and november.next_month == "2026-12"
    csv = service.dashboard_csv(board)
    assert csv.startswith("\ufeffdossier;") and f"{case.id};" in csv and "LE BIHAN" not in csv.upper()
    assert "porte → aiguille : médiane (min);30;dans l'objectif;1/1" in csv
    assert quality._cell(12.5) == "12,5" and quality._cell(None) == "" and quality._cell(7) == "7"
    # the stroke centre answering the alerts reads it too; another hospital and an outsider do not
    chu = await service.dashboard(
        session, network.neurologist.principal, settings, case.organisation_id, "2026-12"
    )
    assert chu.quality.alerts == 2
    with pytest.raises(NotFound):
        await service.dashboard(
            session, network.colleague.principal, settings, case.organisation_id, "2026-12"
        )
    with pytest.raises(Forbidden):
        await service.dashboard(session, network.outsider.principal, settings, None, None)
    with pytest.raises(InvalidInput, match="AAAA-MM"):
        await service.dashboard(session, network.emergency.principal, settings, None, "2026-13")


async def test_the_audit_keeps_the_system_attachment(session, settings, network, patient, store):
    case = await service.create_alert(
        session, network.emergency.principal, settings, alert(patient.id, accession_number="AVC-1")
    )
    study = await _receive_ct(session, store, case.organisation_id, accession_number="AVC-1", **LE_BIHAN)
    from telesante.audit.models import AuditEvent

    rows = (
        (await session.execute(sa.select(AuditEvent).where(AuditEvent.object_id == str(case.request_id))))
        .scalars()
        .all()
    )
    attached = [(r, json.loads(r.details)) for r in rows if "study_attached" in r.details]
    assert len(attached) == 1
    row, details = attached[0]
    assert details["study_attached"] == study.study_uid and details["by"] == service.IMAGING_SYSTEM_NAME
    assert row.account_id is None  # the platform did it, not a person
    assert (await session.get(ImagingStudy, study.id)).patient_id == patient.id
