"""Video rules through the service layer: who opens and enters a call, guests' one-time links, TURN credentials,
the journal and the summary the compte rendu starts from, shared files."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from telesante.config import Settings
from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.requests import service as requests_service
from telesante.requests.models import RequestStatus
from telesante.requests.schemas import ReportCreate
from telesante.scheduling import service as scheduling
from telesante.scheduling.models import AppointmentStatus
from telesante.storage.blobs import FilesystemBlobStore
from telesante.video import service
from telesante.video.models import CallEventKind, GuestRole, RoomStatus
from telesante.video.signalling import GUEST, HOST, PROFESSIONAL
from telesante.video.turn import ice_servers, turn_credentials
from tests.requests.conftest import give_consent
from tests.scheduling.conftest import T0
from tests.video.conftest import PREPARED

SETTINGS = Settings()
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)


async def test_parties_open_and_enter_the_call(session, world, appointment):
    room = await service.open_room(session, world.nurse.principal, appointment.id)
    assert (await service.open_room(session, world.doctor.principal, appointment.id)).id == room.id
    doctor = await service.enter_as_professional(session, world.doctor.principal, room.id)
    nurse = await service.enter_as_professional(session, world.nurse.principal, room.id)
    assert (doctor.role, nurse.role) == (HOST, PROFESSIONAL)
    assert doctor.participant == f"a-{world.doctor.account.id}"
    for actor in (world.colleague, world.outsider):
        with pytest.raises(NotFound):
            await service.open_room(session, actor.principal, appointment.id)
        with pytest.raises(NotFound):
            await service.enter_as_professional(session, actor.principal, room.id)
        with pytest.raises(NotFound):
            await service.create_guest_link(
                session, actor.principal, room.id, name="Intrus", role=GuestRole.RELATIVE, settings=SETTINGS
            )


async def test_a_cancelled_appointment_has_no_call(session, world, appointment):  # prepared, then cancelled
    await scheduling.cancel_appointment(session, world.nurse.principal, appointment.id, "Hospitalisée")
    with pytest.raises(Conflict):
        await service.open_room(session, world.doctor.principal, appointment.id)


async def test_guest_link_works_once_and_then_by_its_browser(session, world, appointment):
    room = await service.open_room(session, world.nurse.principal, appointment.id)
    link, token = await service.create_guest_link(
        session,
        world.doctor.principal,
        room.id,
        name="  Anne   Kerjean ",
        role=GuestRole.RELATIVE,
        settings=SETTINGS,
    )
    assert link.name == "Anne Kerjean" and token not in link.token_hash
    assert (await service.check_guest_link(session, token)).id == link.id
    used, cookie = await service.use_guest_link(session, token)
    seat = await service.guest_seat(session, cookie, room.id)
    assert (seat.role, seat.participant, seat.name) == (GUEST, f"g-{link.id}", "Anne Kerjean (proche)")
    with pytest.raises(service.LinkUnusable) as twice:
        await service.use_guest_link(session, token)
    assert "déjà été utilisé" in twice.value.message and twice.value.status_code == 410
    with pytest.raises(NotFound):
        await service.check_guest_link(session, "inconnu")
    for forged in (None, "", "pas-un-uuid.secret", f"{link.id}.mauvais-secret", f"{link.id}"):
        with pytest.raises(Forbidden):
            await service.guest_seat(session, forged, room.id)
    other_room = await service.open_room(session, world.nurse.principal, appointment.id)
    assert other_room.id == room.id  # one room per appointment
    clock.set_clock(lambda: T0 + timedelta(hours=SETTINGS.video_guest_link_hours, seconds=1))
    with pytest.raises(service.LinkUnusable) as expired:
        await service.guest_seat(session, cookie, room.id)
    assert "expiré" in expired.value.message


async def test_revoked_link_stops_its_guest(session, world, appointment):
    room = await service.open_room(session, world.nurse.principal, appointment.id)
    link, token = await service.create_guest_link(
        session,
        world.nurse.principal,
        room.id,
        name="M. Ferreira",
        role=GuestRole.INTERPRETER,
        settings=SETTINGS,
    )
    _used, cookie = await service.use_guest_link(session, token)
    await service.revoke_guest_link(session, world.doctor.principal, room.id, link.id)
    with pytest.raises(service.LinkUnusable) as revoked:
        await service.guest_seat(session, cookie, room.id)
    assert "annulée" in revoked.value.message
    with pytest.raises(NotFound):
        await service.revoke_guest_link(session, world.colleague.principal, room.id, link.id)


def test_turn_credentials_follow_coturns_rest_scheme():
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    username, password = turn_credentials("s3cret", "a-123", now, 3600)
    assert username == f"{int(now.timestamp()) + 3600}:a-123"
    expected = base64.b64encode(hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()).decode()
    assert password == expected
    settings = Settings(
        video_stun_urls="stun:turn.example.fr:3478",
        video_turn_urls="turns:turn.example.fr:443?transport=tcp",
        video_turn_secret="s3cret",
        video_turn_ttl_seconds=3600,
    )
    servers = ice_servers(settings, "a-123", now)
    assert servers[0] == {"urls": ["stun:turn.example.fr:3478"]}
    assert (
        servers[1]["urls"] == ["turns:turn.example.fr:443?transport=tcp"]
        and servers[1]["credential"] == expected
    )
    assert (
        ice_servers(Settings(video_turn_urls="turn:turn.example.fr:3478"), "a-1", now) == []
    )  # no secret, no TURN
    with pytest.raises(ValueError):
        Settings(video_turn_urls="https://turn.example.fr")


async def test_journal_and_summary_for_the_report(session, world, appointment):
    room = await service.open_room(session, world.nurse.principal, appointment.id)
    rid = str(room.id)
    steps = [
        (0, CallEventKind.JOINED, "a-nurse", "Laure Hamon", {"role": PROFESSIONAL}),
        (1, CallEventKind.JOINED, "a-doc", "Dr Tanguy", {"role": HOST}),
        (2, CallEventKind.ADMITTED, "a-nurse", "Laure Hamon", {"by": "Dr Tanguy"}),
        (9, CallEventKind.DROPPED, "a-nurse", "Laure Hamon", {}),
        (10, CallEventKind.RECONNECTED, "a-nurse", "Laure Hamon", {}),
        (11, CallEventKind.AUDIO_ONLY, "a-doc", "Dr Tanguy", {"on": True}),
        (12, CallEventKind.ICE_RESTART, "a-doc", "Dr Tanguy", {"peer": "a-nurse"}),
        (13, CallEventKind.AUDIO_ONLY, "a-nurse", "Laure Hamon", {"on": True, "weak_network": True}),
        (20, CallEventKind.LEFT, "a-doc", "Dr Tanguy", {}),
    ]
    for minute, kind, who, name, details in steps:
        clock.set_clock(lambda m=minute: T0 + timedelta(minutes=m))
        await service.record_call_event(session, rid, kind, who, name, details)
    await service.record_call_event(session, rid, None, "a-doc", "Dr Tanguy", {"chat": "Bonjour"})
    summary = await service.call_summary(session, world.doctor.principal, room.id)
    assert summary.participants == ["Dr Tanguy", "Laure Hamon"]
    assert summary.started_at == T0 + timedelta(minutes=2)  # two participants in the call
    assert summary.duration_minutes == 18
    assert summary.incidents == [
        "1 coupure(s) de connexion (Laure Hamon), 1 reconnexion(s)",
        "1 renégociation(s) du flux (ICE restart)",
        "réseau faible : passage automatique en audio seul (Laure Hamon)",
        "passage en audio seul (Dr Tanguy)",
    ]
    assert [m.body for m in await service.call_messages(session, world.nurse.principal, room.id)] == [
        "Bonjour"
    ]
    with pytest.raises(NotFound):
        await service.call_summary(session, world.colleague.principal, room.id)


async def test_call_history_for_a_room_reopened_by_the_signalling(session, world, appointment):
    room = await service.open_room(session, world.nurse.principal, appointment.id)
    rid = str(room.id)
    link, _token = await service.create_guest_link(
        session,
        world.nurse.principal,
        room.id,
        name="Mme Ferreira",
        role=GuestRole.RELATIVE,
        settings=SETTINGS,
    )
    guest = f"g-{link.id}"
    for minute, (kind, who, details) in enumerate(
        [
            (CallEventKind.JOINED, "a-doc", {"role": HOST}),
            (CallEventKind.JOINED, "a-nurse", {"role": PROFESSIONAL}),
            (CallEventKind.ADMITTED, "a-nurse", {"by": "Dr Tanguy"}),
            (CallEventKind.JOINED, guest, {"role": GUEST}),
            (CallEventKind.ADMITTED, guest, {"by": "Dr Tanguy"}),
            (CallEventKind.JOINED, "a-interpreter", {"role": PROFESSIONAL}),  # still waiting
            (CallEventKind.DROPPED, "a-nurse", {}),
            (CallEventKind.LEFT, "a-doc", {}),
        ]
    ):
        clock.set_clock(lambda m=minute: T0 + timedelta(minutes=m))
        await service.record_call_event(session, rid, kind, who, "x", details)
    admitted, dropped = await service.call_history(session, rid)
    assert admitted == {"a-doc", "a-nurse", guest} and dropped == {"a-nurse"}
    clock.set_clock(lambda: T0 + timedelta(minutes=30))
    await service.record_call_event(session, rid, CallEventKind.RECONNECTED, "a-nurse", "x", {})
    await service.revoke_guest_link(session, world.doctor.principal, room.id, link.id)
    admitted, dropped = await service.call_history(session, rid)
    assert admitted == {"a-doc", "a-nurse"} and dropped == set()  # a revoked guest is not admitted any more


async def test_shared_photo_is_kept_with_the_call(session, world, appointment, tmp_path):
    store = FilesystemBlobStore(tmp_path / "blobs")
    room = await service.open_room(session, world.nurse.principal, appointment.id)
    message = await service.share_file(
        session, world.nurse.principal, store, room.id, "plaie.png", PNG, max_bytes=1_000_000
    )
    assert message.content_type == "image/png" and message.filename == "plaie.png"
    link, token = await service.create_guest_link(
        session,
        world.doctor.principal,
        room.id,
        name="Anne Kerjean",
        role=GuestRole.RELATIVE,
        settings=SETTINGS,
    )
    _used, cookie = await service.use_guest_link(session, token)
    seat = await service.guest_seat(session, cookie, room.id)
    found, data = await service.read_shared_file(session, store, seat, message.id)
    assert data == PNG and found.id == message.id
    with pytest.raises(Exception) as refused:  # not an image nor a PDF, whatever its name says
        await service.share_file(
            session,
            world.nurse.principal,
            store,
            room.id,
            "photo.png",
            b"MZ\x90\x00binaire",
            max_bytes=1_000_000,
        )
    assert getattr(refused.value, "status_code", None) in (415, 422)
    with pytest.raises(NotFound):
        await service.share_file(
            session, world.outsider.principal, store, room.id, "p.png", PNG, max_bytes=10**6
        )


async def test_no_call_before_preparation(session, world, booked):
    with pytest.raises(service.NotPrepared):
        await service.open_room(session, world.doctor.principal, booked.id)
    with pytest.raises(scheduling.ConsentMissing) as missing:  # consent not recorded yet
        await scheduling.prepare_call(session, world.nurse.principal, booked.id, PREPARED)
    assert missing.value.field == "consent"
    await give_consent(session, world.nurse, world.patient_id, "teleconsultation")
    concerned = PREPARED.model_copy(update={"physical_exam_needed": True})
    with pytest.raises(InvalidInput) as advice:
        await scheduling.prepare_call(session, world.nurse.principal, booked.id, concerned)
    assert advice.value.field == "justification" and "examen physique" in advice.value.message
    justified = concerned.model_copy(
        update={"justification": "Examen guidé par l'infirmière, cheville seule."}
    )
    prepared = await scheduling.prepare_call(session, world.nurse.principal, booked.id, justified)
    assert prepared.eligibility["physical_exam_needed"] is True and prepared.request_id is not None
    act = await requests_service.read_request(session, world.doctor.principal, prepared.request_id)
    assert act.request.status == RequestStatus.ACCEPTED
    assert act.request.assigned_professional_id == world.doctor.professional.id
    again = await scheduling.prepare_call(session, world.doctor.principal, booked.id, PREPARED)
    assert again.request_id == prepared.request_id  # one act per appointment
    for actor in (world.colleague, world.outsider):
        with pytest.raises(NotFound):
            await scheduling.prepare_call(session, actor.principal, booked.id, PREPARED)


async def test_report_prefilled_from_the_call_and_signed_by_the_doctor(session, world, appointment, tmp_path):
    store = FilesystemBlobStore(tmp_path / "blobs")
    room = await service.open_room(session, world.nurse.principal, appointment.id)
    link, token = await service.create_guest_link(
        session,
        world.doctor.principal,
        room.id,
        name="Anne Kerjean",
        role=GuestRole.RELATIVE,
        settings=SETTINGS,
    )
    rid = str(room.id)
    doctor_id, nurse_id = f"a-{world.doctor.account.id}", f"a-{world.nurse.account.id}"
    for minute, kind, who, name, details in (
        (0, CallEventKind.JOINED, nurse_id, "Laure Hamon", {"role": PROFESSIONAL}),
        (1, CallEventKind.JOINED, doctor_id, "Dr Tanguy", {"role": HOST}),
        (1, CallEventKind.ADMITTED, nurse_id, "Laure Hamon", {"by": "Dr Tanguy"}),
        (3, CallEventKind.ADMITTED, f"g-{link.id}", "Anne Kerjean (proche)", {"by": "Dr Tanguy"}),
        (7, CallEventKind.DROPPED, nurse_id, "Laure Hamon", {}),
        (8, CallEventKind.RECONNECTED, nurse_id, "Laure Hamon", {}),
        (16, CallEventKind.LEFT, doctor_id, "Dr Tanguy", {}),
    ):
        clock.set_clock(lambda m=minute: T0 + timedelta(minutes=m))
        await service.record_call_event(session, rid, kind, who, name, details)
    draft = await service.report_draft(session, world.doctor.principal, room.id)
    assert draft["participants"] == [
        {"name": "Dr Tanguy", "role": "médecin téléconsultant"},
        {"name": "Laure Hamon", "role": "professionnel de santé"},
        {"name": "Anne Kerjean", "role": "proche"},
    ]
    assert draft["performed_at"] == T0 + timedelta(minutes=1)
    assert draft["technical_incident"] is True and "coupure" in draft["technical_incident_details"]
    assert draft["duration_minutes"] == 15  # from the second participant's arrival to the last event
    report_data = ReportCreate(
        conclusion="Chutes liées à une hypotension orthostatique ; adaptation du traitement.",
        prescriptions="Arrêt de l'amlodipine ; bas de contention.",
        participants=draft["participants"],
        performed_at=draft["performed_at"],
        duration_minutes=draft["duration_minutes"],
        technical_incident=draft["technical_incident"],
        technical_incident_details=draft["technical_incident_details"],
    )
    with pytest.raises(Forbidden):  # the nurse does not sign the doctor's report
        await service.finish_call(session, world.nurse.principal, SETTINGS, store, room.id, report_data)
    report = await service.finish_call(session, world.doctor.principal, SETTINGS, store, room.id, report_data)
    assert report.signed_by_account_id == world.doctor.account.id and len(report.content_hash) == 64
    assert report.participants[2] == {"name": "Anne Kerjean", "role": "proche"}
    assert report.duration_minutes == 15
    await session.refresh(room)
    await session.refresh(appointment)
    assert room.status == RoomStatus.CLOSED and appointment.status == AppointmentStatus.FULFILLED
    with pytest.raises(Conflict):  # a closed call cannot be entered again
        await service.enter_as_professional(session, world.nurse.principal, room.id)
