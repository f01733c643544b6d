"""The request lifecycle through the service layer, with the three actors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fpdf import FPDF

from telesante.jobs.repository import JobRepository
from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.kit.pagination import PageRequest
from telesante.offers.forms import FormErrors
from telesante.patients import service as patient_service
from telesante.requests import service
from telesante.requests.models import MessageKind, RequestStatus
from telesante.requests.repository import WorklistFilter
from telesante.requests.schemas import (
    MessageCreate,
    Participant,
    ReportCreate,
    RequestAnswer,
    RequestCreate,
    RequestSend,
)
from tests.factories import make_patient
from tests.offers.test_forms import head_trauma_answers
from tests.requests.conftest import give_consent, make_offer

MAX = 5 * 1024 * 1024


def a_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Scanner cérébral : pas de lésion hémorragique.")
    return bytes(pdf.output())


async def draft(session, region, offer, patient, **answers):
    return await service.create_request(
        session,
        region.requester.principal,
        RequestCreate(offer_id=offer.id, patient_id=patient.id, answers=head_trauma_answers(**answers)),
    )


async def sent_request(session, region, offer, patient, store, settings):
    request = await draft(session, region, offer, patient)
    await service.add_attachment(
        session, region.requester.principal, store, request.id, "scanner.pdf", a_pdf(), max_bytes=MAX
    )
    await give_consent(session, region.requester, patient.id)
    return await service.send_request(
        session, region.requester.principal, settings, request.id, RequestSend()
    )


def report(**overrides) -> ReportCreate:
    data = {
        "conclusion": "Pas d'indication neurochirurgicale ; surveillance 24 h.",
        "prescriptions": "Scanner de contrôle à H12 ; INR à H6.",
        "participants": [
            Participant(name="Dr Urgentiste", role="médecin requérant"),
            Participant(name="Dr Neurochirurgien", role="neurochirurgien"),
        ],
        "performed_at": clock.now(),
        "technical_incident": False,
    }
    data.update(overrides)
    return ReportCreate(**data)


async def test_the_whole_story_from_draft_to_closed_with_a_signed_report(
    session, region, offer, patient, store, settings
):
    request = await sent_request(session, region, offer, patient, store, settings)
    assert request.status == RequestStatus.SENT and request.consent_id is not None
    assert clock.as_utc(request.deadline_at) - clock.as_utc(request.sent_at) == timedelta(minutes=30)
    assert request.answers["gcs_total"] == 14
    # The CHU now takes part in the patient's care: its expert can open the record.
    await patient_service.get_patient(session, region.expert.principal, patient.id)

    expert = region.expert.principal
    worklist = await service.worklist(session, expert, WorklistFilter(side="expert"), PageRequest())
    assert [row.request.id for row in worklist.items] == [request.id]
    await service.accept_request(session, expert, request.id)
    await service.post_message(
        session,
        expert,
        request.id,
        MessageCreate(kind=MessageKind.QUESTION, body="Heure exacte de la chute ?"),
    )
    await service.post_message(
        session,
        region.requester.principal,
        request.id,
        MessageCreate(kind=MessageKind.REPLY, body="02 h 40, témoin présent."),
    )
    await service.answer_request(
        session,
        expert,
        request.id,
        RequestAnswer(
            answers={"decision": "surveillance_24h"}, conclusion="Surveillance 24 h, scanner H12-H24."
        ),
    )
    with pytest.raises(Conflict) as missing:
        await service.close_request(session, region.requester.principal, request.id)
    assert "compte rendu signé" in missing.value.message and "R.6316-4" in missing.value.message

    signed = await service.sign_report(session, expert, settings, store, request.id, report())
    assert len(signed.content_hash) == 64 and signed.signed_by_name == expert.display_name
    # The PDF really is a PDF, readable by the requester, carrying the conclusion and the signature hash.
    import io

    from pypdf import PdfReader

    _, pdf = await service.read_report_pdf(session, region.requester.principal, store, request.id)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "surveillance 24 h" in text and signed.content_hash in text.replace("\n", "")
    closed = await service.close_request(session, region.requester.principal, request.id)
    assert closed.status == RequestStatus.CLOSED and closed.closed_at is not None

    detail = await service.get_request(session, region.requester.principal, request.id)
    assert [(t.from_status, t.to_status) for t in detail["transitions"]] == [
        (None, "draft"),
        ("draft", "sent"),
        ("sent", "accepted"),
        ("accepted", "in_progress"),
        ("in_progress", "answered"),
        ("answered", "closed"),
    ]
    assert [m.kind for m in detail["messages"]] == ["question", "reply"]
    assert [a.content_type for a in detail["attachments"]] == ["application/pdf"]
    assert detail["request"].expert_answers["decision"] == "surveillance_24h"


async def test_three_actors(session, region, offer, patient, store, settings):
    request = await sent_request(session, region, offer, patient, store, settings)
    await service.get_request(session, region.requester.principal, request.id)
    await service.get_request(session, region.expert.principal, request.id)
    for other in (region.colleague, region.outsider):
        with pytest.raises(NotFound):
            await service.get_request(session, other.principal, request.id)
        with pytest.raises(NotFound):
            await service.accept_request(session, other.principal, request.id)
        page = await service.worklist(session, other.principal, WorklistFilter(), PageRequest())
        assert page.total == 0


async def test_a_draft_is_not_shown_to_the_experts(session, region, offer, patient):
    request = await draft(session, region, offer, patient)
    with pytest.raises(NotFound):
        await service.get_request(session, region.expert.principal, request.id)


async def test_no_consent_no_sending_unless_an_emergency_is_documented(
    session, region, offer, patient, store, settings
):
    request = await draft(session, region, offer, patient)
    await service.add_attachment(
        session, region.requester.principal, store, request.id, "scanner.pdf", a_pdf(), max_bytes=MAX
    )
    with pytest.raises(service.ConsentMissing) as caught:
        await service.send_request(session, region.requester.principal, settings, request.id, RequestSend())
    assert caught.value.status_code == 409 and "onsentement" in caught.value.message
    assert (await service.get_request(session, region.requester.principal, request.id))[
        "request"
    ].status == "draft"
    reason = "Patient confus (GCS 14), sans proche joignable"
    sent = await service.send_request(
        session, region.requester.principal, settings, request.id, RequestSend(emergency_exemption=reason)
    )
    assert (
        sent.status == RequestStatus.SENT and sent.consent_id is None and sent.emergency_exemption == reason
    )


async def test_a_consent_on_file_comes_before_an_emergency_exemption(
    session, region, offer, patient, store, settings
):
    request = await draft(session, region, offer, patient)
    await service.add_attachment(
        session, region.requester.principal, store, request.id, "scanner.pdf", a_pdf(), max_bytes=MAX
    )
    consent = await give_consent(session, region.requester, patient.id)
    sent = await service.send_request(
        session,
        region.requester.principal,
        settings,
        request.id,
        RequestSend(emergency_exemption="Patient confus (GCS 14), sans proche joignable"),
    )
    assert sent.consent_id == consent.id and sent.emergency_exemption == ""
    transitions = (await service.get_request(session, region.requester.principal, request.id))["transitions"]
    assert [t.reason for t in transitions] == ["", ""]  # the exemption was not what allowed the sending


async def test_created_and_sent_at_once_keeps_the_rules_and_the_trail_of_create_then_send(
    session, region, offer, patient, settings
):
    requester = region.requester.principal
    exemption = RequestSend(
        emergency_exemption="Aphasie, patient seul : consentement impossible à recueillir"
    )
    # the rules of create_request: another hospital's patient is not found, a closed offer is refused
    theirs = await make_patient(
        session, region.colleague, birth_family_name="Kerbrat", birth_given_names="Anne"
    )
    # an offer whose form needs no attachment (the stroke alert's)
    alert = await make_offer(
        session, region, title="Alerte neurovasculaire", specialty="Neurologie", form_code="alerte_avc"
    )
    with pytest.raises(NotFound):
        await service.create_and_send(
            session, requester, settings, RequestCreate(offer_id=alert.id, patient_id=theirs.id), exemption
        )
    # the rules of send_request: the form must be complete (the head trauma form needs the CT report)
    with pytest.raises(FormErrors) as caught:
        await service.create_and_send(
            session,
            requester,
            settings,
            RequestCreate(offer_id=offer.id, patient_id=patient.id, answers=head_trauma_answers()),
            exemption,
        )
    assert "ct_documents" in caught.value.errors
    # and consent: none on file and no exemption, refused
    with pytest.raises(service.ConsentMissing):
        await service.create_and_send(
            session,
            requester,
            settings,
            RequestCreate(offer_id=alert.id, patient_id=patient.id),
            RequestSend(),
        )
    sent = await service.create_and_send(
        session,
        requester,
        settings,
        RequestCreate(offer_id=alert.id, patient_id=patient.id, answers={"summary": "Hémiplégie droite"}),
        exemption,
    )
    assert sent.status == RequestStatus.SENT and sent.consent_id is None
    assert sent.emergency_exemption == exemption.emergency_exemption
    shown = await service.get_request(session, requester, sent.id)
    assert [(t.from_status, t.to_status) for t in shown["transitions"]] == [
        (None, RequestStatus.DRAFT),
        (RequestStatus.DRAFT, RequestStatus.SENT),
    ]
    assert shown["transitions"][1].reason == "urgence : " + exemption.emergency_exemption
    assert await JobRepository(session).find_pending(service.DEADLINE_JOB, str(sent.id)) is not None
    # the answering hospital's expert now sees the request and the patient; the other two actors do not
    assert (await service.get_request(session, region.expert.principal, sent.id))["request"].id == sent.id
    await patient_service.require_patient_access(session, region.expert.principal, patient.id)
    for other in (region.colleague, region.outsider):
        with pytest.raises(NotFound):
            await service.get_request(session, other.principal, sent.id)
    # with a consent on file, it is the consent that counts, not the exemption
    consent = await give_consent(session, region.requester, patient.id)
    again = await service.create_and_send(
        session, requester, settings, RequestCreate(offer_id=alert.id, patient_id=patient.id), exemption
    )
    assert again.consent_id == consent.id and again.emergency_exemption == ""


async def test_an_incomplete_form_is_refused_field_by_field(session, region, offer, patient, settings):
    request = await draft(session, region, offer, patient, gcs_motor="", inr="")
    await give_consent(session, region.requester, patient.id)
    with pytest.raises(FormErrors) as caught:
        await service.send_request(session, region.requester.principal, settings, request.id, RequestSend())
    assert set(caught.value.errors) == {"gcs_motor", "inr", "ct_documents"}
    assert (await service.get_request(session, region.requester.principal, request.id))[
        "request"
    ].status == "draft"


async def test_illegal_transitions_say_why(session, region, offer, patient, store, settings):
    request = await sent_request(session, region, offer, patient, store, settings)
    with pytest.raises(Forbidden):
        await service.decline_request(session, region.requester.principal, request.id, "pas pour moi")
    await service.decline_request(session, region.expert.principal, request.id, "Hors de notre champ")
    with pytest.raises(Conflict) as caught:
        await service.answer_request(
            session,
            region.expert.principal,
            request.id,
            RequestAnswer(
                answers={"decision": "transfert", "transfer_delay": "immediat"}, conclusion="Transfert"
            ),
        )
    assert "refusée" in caught.value.message
    with pytest.raises(Conflict):
        await service.cancel_request(session, region.requester.principal, request.id, "erreur")


async def test_one_expert_wins_the_acceptance(session, region, offer, patient, store, settings):
    request = await sent_request(session, region, offer, patient, store, settings)
    await service.accept_request(session, region.expert.principal, request.id)
    with pytest.raises(Conflict) as caught:
        await service.accept_request(session, region.second_expert.principal, request.id)
    assert region.expert.principal.display_name in caught.value.message


async def test_unanswered_request_expires_at_its_deadline(session, region, offer, patient, store, settings):
    request = await sent_request(session, region, offer, patient, store, settings)
    await service.expire_if_unanswered(session, {"request_id": str(request.id)})  # too early: nothing
    assert (await service.get_request(session, region.expert.principal, request.id))[
        "request"
    ].status == "sent"
    later = clock.as_utc(request.deadline_at) + timedelta(seconds=1)
    clock.set_clock(lambda: later)
    # The deadline job fires at the deadline; the handler itself decides from the state.
    await service.expire_if_unanswered(session, {"request_id": str(request.id)})
    expired = (await service.get_request(session, region.expert.principal, request.id))["request"]
    assert expired.status == RequestStatus.EXPIRED and service.is_overdue(expired)
    accepted = await service.accept_request(
        session, region.expert.principal, request.id
    )  # late, still useful
    assert accepted.status == RequestStatus.ACCEPTED


async def test_report_rules(session, region, offer, patient, store, settings):
    request = await sent_request(session, region, offer, patient, store, settings)
    await service.accept_request(session, region.expert.principal, request.id)
    with pytest.raises(Conflict):
        await service.sign_report(session, region.expert.principal, settings, store, request.id, report())
    await service.answer_request(
        session,
        region.expert.principal,
        request.id,
        RequestAnswer(
            answers={"decision": "reversion", "decision_details": "PPSB 25 UI/kg"}, conclusion="Réversion"
        ),
    )
    with pytest.raises(InvalidInput):
        await service.sign_report(
            session,
            region.expert.principal,
            settings,
            store,
            request.id,
            report(performed_at=clock.now() + timedelta(hours=2)),
        )
    with pytest.raises(ValueError, match="incident"):
        report(technical_incident=True, technical_incident_details="")
    signed = await service.sign_report(
        session,
        region.expert.principal,
        settings,
        store,
        request.id,
        report(technical_incident=True, technical_incident_details="Coupure réseau de 2 minutes"),
    )
    assert signed.technical_incident is True
    with pytest.raises(Conflict):
        await service.sign_report(session, region.expert.principal, settings, store, request.id, report())


async def test_attachments_are_checked_by_content(session, region, offer, patient, store, settings):
    request = await draft(session, region, offer, patient)
    with pytest.raises(InvalidInput):
        await service.add_attachment(
            session,
            region.requester.principal,
            store,
            request.id,
            "scanner.pdf",
            b"<html>not a pdf</html>",
            max_bytes=MAX,
        )
    detail = await service.get_request(session, region.requester.principal, request.id)
    assert detail["attachments"] == []


async def test_worklists_count_and_filter(session, region, offer, patient, store, settings):
    first = await sent_request(session, region, offer, patient, store, settings)
    second = await draft(session, region, offer, patient)
    mine = await service.worklist(
        session, region.requester.principal, WorklistFilter(side="requester"), PageRequest()
    )
    assert mine.total == 2 and {r.request.id for r in mine.items} == {first.id, second.id}
    drafts = await service.worklist(
        session,
        region.requester.principal,
        WorklistFilter(side="requester", statuses=(RequestStatus.DRAFT,)),
        PageRequest(),
    )
    assert drafts.total == 1 and [r.request.id for r in drafts.items] == [second.id]
    experts = await service.worklist(
        session, region.expert.principal, WorklistFilter(side="expert"), PageRequest()
    )
    assert experts.total == 1  # drafts are the requester's alone
