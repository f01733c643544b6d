"""Patients and cases: an arriving study is matched to a patient only when sure (INS or the sender's IPP, traits
agreeing), otherwise it waits in the identity-vigilance queue; a study attached to a request is seen by the
request's expert; three actors (treating professional, colleague elsewhere, outsider); every view audited."""

from __future__ import annotations

import io
from datetime import date

import pydicom
import pytest
import sqlalchemy as sa
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from telesante.audit.models import AuditEvent
from telesante.imaging import service
from telesante.imaging.models import ImagingSeries, PatientMatch
from telesante.imaging.phantom import ct_slice
from telesante.imaging.repository import ImagingRepository, StudyCriteria
from telesante.kit.errors import Conflict, InvalidInput, NotFound
from telesante.kit.pagination import PageRequest
from telesante.requests import service as request_service
from tests.factories import make_patient, valid_nir
from tests.requests.test_service import sent_request

BIRTH = date(1950, 5, 4)  # the phantom's PatientBirthDate


@pytest.fixture
async def yann(session, region):
    """The phantom's patient, registered at the requesting hospital with its IPP there."""
    return await make_patient(
        session,
        region.requester,
        birth_family_name="Le Goff",
        birth_given_names="Yann",
        birth_date=BIRTH,
        sex="M",
        ipp="IPP-0001",
    )


def requester_org(region):
    return next(iter(region.requester.principal.clinical_organisation_ids))


async def receive(session, store, region, *, slices=2, **kwargs):
    study_uid, series_uid = generate_uid(), generate_uid()
    result = None
    for number in range(1, slices + 1):
        result = await service.ingest_instance(
            session,
            store,
            ct_slice(study_uid, series_uid, number, **kwargs),
            organisation_id=requester_org(region),
            received_from="dicom:CT_FOUGERES",
        )
    return result.study


async def visible(session, actor, study) -> bool:
    found = await service.search_studies(
        session, actor.principal, StudyCriteria(study_uid=study.study_uid), PageRequest(0, 10)
    )
    return bool(found.items)


async def test_matched_by_the_senders_ipp_when_the_traits_agree(session, region, store, yann):
    study = await receive(session, store, region)
    assert (study.patient_id, study.patient_match) == (yann.id, PatientMatch.IPP)
    # the same IPP with another birth date: not sure, so queued for a person
    other = await receive(session, store, region, birth_date="19500505")
    assert (other.patient_id, other.patient_match) == (None, PatientMatch.PENDING)
    other_id = other.id
    queue = await service.list_to_reconcile(session, region.requester.principal)
    assert [s.id for s in queue] == [other_id]
    listed = (
        await session.execute(
            sa.select(AuditEvent).where(AuditEvent.object_id == str(other_id), AuditEvent.action == "search")
        )
    ).scalar_one()
    assert "identitovigilance" in listed.details
    assert await service.list_to_reconcile(session, region.expert.principal) == []  # not the CHU's queue


async def test_matched_by_the_ins_of_the_header(session, region, store):
    nir = valid_nir("1", BIRTH)
    patient = await make_patient(
        session,
        region.requester,
        birth_family_name="Le Goff",
        birth_given_names="Yann",
        birth_date=BIRTH,
        sex="M",
    )
    patient.ins_matricule, patient.ins_oid = nir, "1.2.250.1.213.1.4.8"
    await session.flush()
    item = Dataset()
    item.PatientID = nir
    item.IssuerOfPatientID = "1.2.250.1.213.1.4.8"
    ds = pydicom.dcmread(io.BytesIO(ct_slice(generate_uid(), generate_uid(), 1, patient_id="LOCAL-9")))
    ds.OtherPatientIDsSequence = [item]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    result = await service.ingest_instance(
        session, store, out.getvalue(), organisation_id=requester_org(region), received_from="stow"
    )
    assert (result.study.patient_id, result.study.patient_match) == (patient.id, PatientMatch.INS)


async def test_reconciliation_by_a_person_of_the_sender(session, region, store, yann):
    study = await receive(session, store, region, patient_id="INCONNU")
    study_id = study.id
    with pytest.raises(NotFound):  # the CHU's expert does not reconcile Fougères' studies
        await service.reconcile_study(session, region.expert.principal, study_id, yann.id, "appel")
    with pytest.raises(InvalidInput, match="vérifiée"):
        await service.reconcile_study(session, region.requester.principal, study_id, yann.id, "  ")
    done = await service.reconcile_study(
        session, region.requester.principal, study_id, yann.id, "Bracelet et carte d'identité vérifiés"
    )
    assert (done.patient_id, done.patient_match) == (yann.id, PatientMatch.MANUAL)
    with pytest.raises(Conflict):
        await service.reconcile_study(session, region.requester.principal, study_id, yann.id, "encore")
    audit = (
        await session.execute(
            sa.select(AuditEvent).where(AuditEvent.object_id == str(study_id), AuditEvent.action == "update")
        )
    ).scalar_one()
    assert audit.patient_id == yann.id and "Bracelet" in audit.details


async def test_three_actors_and_the_request_giving_access(
    session,
    region,
    offer,
    store,
    settings,
    yann,
):
    study = await receive(session, store, region)
    study_id, study_uid = study.id, study.study_uid
    assert await visible(session, region.requester, study)  # the treating professional (sender's clinician)
    for actor in (region.expert, region.colleague, region.outsider):
        assert not await visible(session, actor, study)
    request = await sent_request(session, region, offer, yann, store, settings)
    request_id = request.id
    with pytest.raises(NotFound):  # the colleague elsewhere cannot attach what it cannot see
        await service.attach_study(session, region.colleague.principal, request_id, study_id)
    await service.attach_study(session, region.requester.principal, request_id, study_id)
    with pytest.raises(Conflict, match="déjà jointe"):
        await service.attach_study(session, region.requester.principal, request_id, study_id)
    assert await visible(session, region.expert, study)  # the request gives access
    assert not await visible(session, region.colleague, study)
    assert not await visible(session, region.outsider, study)
    metadata_study, rows = await service.read_metadata(session, region.expert.principal, study_uid)
    assert len(rows) == 2 and metadata_study.id == study_id
    with pytest.raises(NotFound):
        await service.read_metadata(session, region.colleague.principal, study_uid)
    views = (
        await session.execute(
            sa.select(AuditEvent).where(
                AuditEvent.object_id == str(study_id),
                AuditEvent.action == "read",
                AuditEvent.account_id == region.expert.account.id,
            )
        )
    ).scalars()
    assert [v.patient_id for v in views] == [yann.id]  # the expert's view is in the patient's access log
    # the request's page lists the attached study and the patient's other studies (priors) for the expert
    prior = await receive(session, store, region)
    imaging = await service.request_imaging(session, region.expert.principal, request_id)
    assert [s.id for _link, s in imaging.attached] == [study_id]
    assert [s.id for s in imaging.priors] == [prior.id]
    for actor in (region.colleague, region.outsider):
        assert not await visible(session, actor, prior)
        with pytest.raises(NotFound):
            await service.request_imaging(session, actor.principal, request_id)
    # the act made the CHU a care relationship of the patient: what was shared stays readable after the end
    await request_service.cancel_request(session, region.requester.principal, request_id, "Patient transféré")
    assert await visible(session, region.expert, study)


async def test_a_study_of_another_patient_is_never_attached(
    session,
    region,
    offer,
    store,
    settings,
    yann,
):
    stranger = await receive(session, store, region, patient_id="AUTRE")  # pending, traits of Yann Le Goff…
    request = await sent_request(session, region, offer, yann, store, settings)
    request_id, stranger_id = request.id, stranger.id
    # …so the requester is offered to attach it (the expert of the CHU is not: it is not theirs)
    offered = await service.request_imaging(session, region.requester.principal, request_id)
    assert [s.id for s in offered.candidates] == [stranger_id]
    assert (await service.request_imaging(session, region.expert.principal, request_id)).candidates == []
    # …so attaching it to Yann's request matches it through the request (traits agree)
    await service.attach_study(session, region.requester.principal, request_id, stranger_id)
    assert stranger.patient_match == PatientMatch.REQUEST and stranger.patient_id == yann.id
    other_patient = await make_patient(
        session, region.requester, birth_family_name="Martin", birth_given_names="Paul", ipp="IPP-0002"
    )
    other_request = await sent_request(session, region, offer, other_patient, store, settings)
    other_request_id = other_request.id
    with pytest.raises(Conflict, match="autre patient"):
        await service.attach_study(session, region.requester.principal, other_request_id, stranger_id)
    unknown = await receive(session, store, region, patient_id="X-1", birth_date="19991231")
    with pytest.raises(Conflict, match="identitovigilance"):
        await service.attach_study(session, region.requester.principal, other_request_id, unknown.id)


async def test_a_frames_view_is_marked_audited_only_once_its_audit_row_commits(session, region, store, yann):
    """The frames of a series are audited once per user per 10 minutes: the mark that spares the next audits is set
    after the commit. A view whose transaction rolls back leaves no mark, so the next one is audited again."""
    study = await receive(session, store, region)
    series = (
        await session.execute(sa.select(ImagingSeries).where(ImagingSeries.study_id == study.id))
    ).scalar_one()
    instance = (await ImagingRepository(session).list_instances(series.id))[0]
    principal = region.requester.principal
    key = (principal.account_id, series.series_uid)
    service._frame_audits.pop(key, None)

    async def view() -> list:
        """The after-commit hooks this view registered."""
        hooks = session.info.setdefault("after_commit", [])
        before = len(hooks)
        await service.locate_frames(
            session, principal, study.study_uid, series.series_uid, instance.sop_instance_uid, [1]
        )
        added = hooks[before:]
        del hooks[before:]
        return added

    assert len(await view()) == 1 and key not in service._frame_audits  # rolled back: its hook never runs
    hooks = await view()  # audited again
    assert len(hooks) == 1
    await hooks[0]()  # committed
    assert key in service._frame_audits
    assert await view() == []  # within 10 minutes: not audited again
