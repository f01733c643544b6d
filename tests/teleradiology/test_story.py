"""The teleradiology story end to end through the services (Flandres-Lys-like federation, G4 charter): a general
hospital asks for a head CT to be read remotely; the federation's radiologist validates the indication and the
protocol before the acquisition; the CT arrives from the scanner and is attached; the worklist shows it with its
priority and its timer, flagged once past the contracted delay; the radiologist sees the patient's prior study,
answers and signs the report, which the requesting site reads. Both sites keep timestamped traces."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from pydicom.uid import generate_uid

from telesante.audit.models import AuditEvent
from telesante.directory.models import OrganisationType, Role
from telesante.imaging import service as imaging_service
from telesante.imaging.phantom import ct_slice
from telesante.kit import clock
from telesante.kit.errors import Conflict, InvalidInput, NotFound
from telesante.offers import service as offer_service
from telesante.offers.models import ActType, Routing
from telesante.offers.schemas import OfferCreate
from telesante.requests import service as request_service
from telesante.requests.models import RequestStatus, RequestTransition
from telesante.requests.schemas import RequestAnswer, RequestCreate, RequestSend
from telesante.storage.blobs import FilesystemBlobStore
from telesante.teleradiology import service
from telesante.teleradiology.models import JustificationDecision
from telesante.teleradiology.schemas import JustificationCreate
from tests.factories import make_actor, make_organisation, make_patient, token_for
from tests.requests.conftest import give_consent
from tests.requests.test_service import report


@pytest.fixture
def store(tmp_path):
    return FilesystemBlobStore(tmp_path / "blobs")


@pytest.fixture
async def federation(session):
    hospital = await make_organisation(session, "CH d'Armentières")
    federation = await make_organisation(session, "Téléradiologie Flandres-Lys", type=OrganisationType.CHU)
    elsewhere = await make_organisation(session, "CH de Vitré")
    admin = await make_actor(session, federation, Role.ORG_ADMIN)
    offer = await offer_service.create_offer(
        session,
        admin.principal,
        OfferCreate(
            organisation_id=federation.id,
            title="Téléradiologie de la fédération",
            act_type=ActType.TELEEXPERTISE,
            specialty="Radiologie",
            form_code="teleradiologie",
            routing=Routing.POOL,
            response_minutes=30,
            urgent=True,
        ),
    )
    urgentist = await make_actor(session, hospital, Role.REQUESTER)
    radiologist = await make_actor(session, federation, Role.EXPERT)
    colleague = await make_actor(session, elsewhere, Role.EXPERT)
    outsider = await make_actor(session, None, Role.EVALUATOR)
    patient = await make_patient(
        session,
        urgentist,
        birth_family_name="Le Goff",
        birth_given_names="Yann",
        birth_date=date(1950, 5, 4),
        sex="M",
        ipp="ARM-1",
    )
    return {
        "hospital": hospital,
        "offer": offer,
        "urgentist": urgentist,
        "radiologist": radiologist,
        "colleague": colleague,
        "outsider": outsider,
        "patient": patient,
    }


def ct_answers(**overrides):
    answers = {
        "modality": "scanner",
        "region": "encéphale",
        "priority": "urgence",
        "contrast": "non",
        "context": "Céphalée brutale à 14 h, vomissements.",
        "question": "Hémorragie méningée ?",
        "pregnancy": "sans_objet",
    }
    answers.update(overrides)
    return answers


async def ask(session, world, settings, store, **answers):
    request = await request_service.create_request(
        session,
        world["urgentist"].principal,
        RequestCreate(
            offer_id=world["offer"].id,
            patient_id=world["patient"].id,
            answers=ct_answers(**answers),
            urgent=True,
        ),
    )
    await give_consent(session, world["urgentist"], world["patient"].id)
    return await request_service.send_request(
        session, world["urgentist"].principal, settings, request.id, RequestSend()
    )


async def scanner_sends(session, store, world, study_date="20261129"):
    study_uid, series_uid = generate_uid(), generate_uid()
    for number in (1, 2, 3):
        result = await imaging_service.ingest_instance(
            session,
            store,
            ct_slice(study_uid, series_uid, number, patient_id="ARM-1", rows=64, study_date=study_date),
            organisation_id=world["hospital"].id,
            received_from="dicom:CT_ARMENTIERES",
        )
    return result.study


def phase_of(items, request_id):
    return next(item for item in items if item.row.request.id == request_id)


async def test_the_teleradiology_story(session, federation, settings, store):
    world = federation
    radiologist, urgentist = world["radiologist"].principal, world["urgentist"].principal
    prior = await scanner_sends(session, store, world, study_date="20250310")  # a head CT of last year
    request = await ask(session, world, settings, store)
    request_id = request.id

    items = await service.worklist(session, radiologist, settings)
    assert phase_of(items, request_id).phase == service.Phase.TO_JUSTIFY
    assert await service.worklist(session, world["colleague"].principal, settings) == []
    with pytest.raises(NotFound):
        await service.justify_exam(
            session,
            world["colleague"].principal,
            request_id,
            JustificationCreate(decision=JustificationDecision.JUSTIFIED, protocol="TDM sans injection"),
        )
    with pytest.raises(InvalidInput, match="protocole"):
        await service.justify_exam(
            session, radiologist, request_id, JustificationCreate(decision=JustificationDecision.JUSTIFIED)
        )

    # before the acquisition: indication and protocol validated by the radiologist, who takes the request
    justification = await service.justify_exam(
        session,
        radiologist,
        request_id,
        JustificationCreate(
            decision=JustificationDecision.JUSTIFIED, protocol="TDM cérébrale sans injection, coupes de 1 mm"
        ),
    )
    assert justification.radiologist_name == radiologist.display_name
    assert (
        await request_service.read_request(session, urgentist, request_id)
    ).request.status == RequestStatus.ACCEPTED
    with pytest.raises(Conflict, match="déjà"):
        await service.justify_exam(
            session,
            radiologist,
            request_id,
            JustificationCreate(decision=JustificationDecision.JUSTIFIED, protocol="autre"),
        )
    seen = await service.get_justification(session, urgentist, request_id)  # the requesting site sees it
    assert seen.protocol.startswith("TDM cérébrale")
    assert phase_of(await service.worklist(session, radiologist, settings), request_id).phase == (
        service.Phase.AWAITING_IMAGES
    )

    # the CT arrives from the scanner (matched by the IPP) and the urgentist attaches it
    study = await scanner_sends(session, store, world)
    await imaging_service.attach_study(session, urgentist, request_id, study.id)
    item = phase_of(await service.worklist(session, radiologist, settings), request_id)
    assert (item.phase, item.row.studies) == (service.Phase.TO_READ, 1)
    assert (item.priority, item.target_minutes, item.late) == (
        "urgence",
        settings.teleradiology_read_minutes_urgent,
        False,
    )

    # past the contracted delay, the exam is flagged (and comes first)
    later = clock.now() + timedelta(minutes=settings.teleradiology_read_minutes_urgent + 5)
    clock.set_clock(lambda: later)
    try:
        late = (await service.worklist(session, radiologist, settings))[0]
        assert late.row.request.id == request_id and late.late and late.waited_minutes > late.target_minutes
    finally:
        clock.set_clock(None)

    # the radiologist reads with the prior study listed, answers and signs
    imaging = await imaging_service.request_imaging(session, radiologist, request_id)
    assert [s.id for _link, s in imaging.attached] == [study.id]
    assert [s.id for s in imaging.priors] == [prior.id]
    await request_service.answer_request(
        session,
        radiologist,
        request_id,
        RequestAnswer(answers={"result": "normal"}, conclusion="Pas d'hémorragie ni d'effet de masse."),
    )
    assert (
        phase_of(await service.worklist(session, radiologist, settings), request_id).phase
        == service.Phase.TO_SIGN
    )
    signed = await request_service.sign_report(
        session, radiologist, settings, store, request_id, report(conclusion="Scanner cérébral normal.")
    )
    signed_id = signed.id
    assert (
        phase_of(await service.worklist(session, radiologist, settings), request_id).phase
        == service.Phase.DONE
    )

    # the report returns to the requesting site
    _found, report_read = await request_service.read_report(session, urgentist, signed_id)
    assert report_read.conclusion == "Scanner cérébral normal."
    _report, pdf = await request_service.read_report_pdf(session, urgentist, store, request_id)
    assert pdf[:5] == b"%PDF-"

    # timestamped traces of each exchange, on both sides
    transitions = (
        (
            await session.execute(
                sa.select(RequestTransition).where(RequestTransition.request_id == request_id)
            )
        )
        .scalars()
        .all()
    )
    assert [t.to_status for t in transitions][:3] == [
        RequestStatus.DRAFT,
        RequestStatus.SENT,
        RequestStatus.ACCEPTED,
    ]
    audited = {
        (e.object_type, e.action)
        for e in (
            await session.execute(sa.select(AuditEvent).where(AuditEvent.patient_id == world["patient"].id))
        ).scalars()
    }
    assert {("ExamJustification", "create"), ("ImagingStudy", "create"), ("TeleRequest", "create")} <= audited


async def test_a_non_justified_exam_is_declined_with_its_reason(session, federation, settings, store):
    world = federation
    request = await ask(session, world, settings, store, priority="programme")
    request_id = request.id
    with pytest.raises(InvalidInput, match="Expliquez"):
        await service.justify_exam(
            session,
            world["radiologist"].principal,
            request_id,
            JustificationCreate(decision=JustificationDecision.NOT_JUSTIFIED),
        )
    await service.justify_exam(
        session,
        world["radiologist"].principal,
        request_id,
        JustificationCreate(
            decision=JustificationDecision.NOT_JUSTIFIED,
            comment="Céphalée chronique sans signe de gravité : pas d'indication au scanner (guide du bon usage).",
        ),
    )
    found = await request_service.read_request(session, world["urgentist"].principal, request_id)
    assert found.request.status == RequestStatus.DECLINED
    assert found.request.decline_reason.startswith("Examen non justifié : Céphalée chronique")
    assert await service.worklist(session, world["radiologist"].principal, settings) == []


async def test_the_worklist_page_and_the_justification_form(
    session, federation, settings, store, app, client
):
    world = federation
    request = await ask(session, world, settings, store, priority="urgence_vitale")
    request_id = request.id
    headers = await token_for(session, world["radiologist"])
    page = await client.get("/teleradiologie", headers=headers)
    assert page.status_code == 200 and "Urgence vitale" in page.text and "À justifier" in page.text
    outsider = await client.get("/teleradiologie", headers=await token_for(session, world["outsider"]))
    assert outsider.status_code == 200 and "LE GOFF" not in outsider.text
    refused = await client.post(
        f"/demandes/{request_id}/justification",
        data={"decision": "justifie", "protocol": "TDM"},
        headers=await token_for(session, world["colleague"]),
    )
    assert refused.status_code == 404
    done = await client.post(
        f"/demandes/{request_id}/justification",
        data={"decision": "justifie", "protocol": "TDM cérébrale sans injection"},
        headers=headers,
        follow_redirects=False,
    )
    assert done.status_code == 303
    detail = await client.get(f"/demandes/{request_id}", headers=headers)
    assert "TDM cérébrale sans injection" in detail.text and "Examen justifié" in detail.text
