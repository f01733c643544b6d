"""The medical secretariat (*secrétariat médical*): identity and agenda of its organisation, never clinical content.

The CHU geriatrician's secretary registers a patient who phones in, books a teleconsultation with the CHU's doctor,
moves it and cancels it; she does not see the consents, cannot prepare the call nor open it. The secretary of
another hospital (the colleague elsewhere) and the regional evaluator (the outsider) see nothing. Through the
service, the JSON API and the pages."""

from __future__ import annotations

import pytest

from telesante.config import Settings
from telesante.directory.models import Profession, Role
from telesante.directory.repository import OrganisationRepository
from telesante.kit.errors import Forbidden, NotFound
from telesante.kit.pagination import PageRequest
from telesante.offers import service as offer_service
from telesante.offers.models import ActType, Routing
from telesante.offers.schemas import OfferCreate
from telesante.patients import service as patients_service
from telesante.patients.repository import PatientCriteria
from telesante.patients.schemas import LocalIdentifierCreate, PatientUpdate
from telesante.scheduling import service
from telesante.scheduling.schemas import AppointmentCreate, AppointmentReschedule, CallPreparation
from tests.factories import make_actor, make_organisation, patient_data, token_for
from tests.patients.test_pages import post_form, sign_in
from tests.requests.conftest import give_consent
from tests.scheduling.conftest import weekday_mornings


@pytest.fixture
async def desk(session, world):
    """The CHU's secretary, another hospital's secretary, and the doctor's agenda opened."""
    chu = await OrganisationRepository(session).get(world.chu_id)
    secretary = await make_actor(session, chu, Role.MEDICAL_SECRETARY, profession=Profession.ADMINISTRATIF)
    elsewhere = await make_organisation(session, "CH de Redon")
    other_secretary = await make_actor(
        session, elsewhere, Role.MEDICAL_SECRETARY, profession=Profession.ADMINISTRATIF
    )
    await service.add_pattern(session, world.doctor.principal, weekday_mornings(world), Settings())
    return secretary, other_secretary


async def test_the_secretariat_books_for_its_doctors_and_sees_no_clinical_content(session, world, desk):
    secretary, other_secretary = desk
    patient, warnings = await patients_service.register_patient(
        session, secretary.principal, patient_data(birth_family_name="Le Bihan", birth_given_names="Anne")
    )
    assert warnings == []
    found = await patients_service.search_patients(
        session, secretary.principal, PatientCriteria(family="le bihan"), PageRequest(0, 10), identity=True
    )
    assert [p.id for p in found.items] == [patient.id]
    identity = await patients_service.get_patient_identity(session, secretary.principal, patient.id)
    assert identity.patient.id == patient.id and identity.clinical is False
    # the administrative identity is hers to keep up to date: contact details and the CHU's IPP
    updated = await patients_service.update_patient(
        session, secretary.principal, patient.id, PatientUpdate(phone="02 99 00 00 00", city="Rennes")
    )
    assert updated.phone == "02 99 00 00 00"
    ipp = await patients_service.add_local_identifier(
        session,
        secretary.principal,
        patient.id,
        LocalIdentifierCreate(organisation_id=world.chu_id, value="CHU-778"),
    )
    assert ipp.value == "CHU-778"
    with pytest.raises(NotFound):  # not for a patient the CHU does not follow
        await patients_service.update_patient(
            session, secretary.principal, world.patient_id, PatientUpdate(phone="02 99 00 00 01")
        )

    slots = await service.list_free_slots(session, secretary.principal, world.offer_id, Settings())
    appointment = await service.book_appointment(
        session,
        secretary.principal,
        AppointmentCreate(
            slot_id=slots[0][0].id,
            patient_id=patient.id,
            reason="Troubles de la marche",
            callback_phone="0299000000",
        ),
    )
    assert (
        appointment.organisation_id == world.chu_id
        and appointment.booked_by_name == secretary.principal.display_name
    )
    agenda = await service.list_appointments(
        session, secretary.principal, day_from=slots[0][0].starts_at.date()
    )
    assert [a.id for a in agenda] == [appointment.id]
    # the doctor sees it in her agenda; the secretary moves it, then it is prepared only by the care team
    assert appointment.id in [
        a.id
        for a in await service.list_appointments(
            session, world.doctor.principal, day_from=slots[0][0].starts_at.date()
        )
    ]
    moved = await service.reschedule_appointment(
        session,
        secretary.principal,
        appointment.id,
        AppointmentReschedule(slot_id=slots[1][0].id, reason="Demande du patient"),
    )
    with pytest.raises(NotFound):  # clinical: the preparation (eligibility, consent) and the call
        await service.prepare_call(
            session,
            secretary.principal,
            moved.id,
            CallPreparation(
                physical_exam_needed=False,
                bad_news=False,
                data_unavailable=False,
                communication_impossible=False,
                callback_phone="0299000000",
            ),
        )
    with pytest.raises(NotFound):  # the clinical gate every clinical domain uses stays shut
        await patients_service.get_patient(session, secretary.principal, patient.id)
    # the other hospital's secretary and the outsider: nothing
    for actor in (other_secretary, world.outsider):
        with pytest.raises(NotFound):
            await patients_service.get_patient_identity(session, actor.principal, patient.id)
        with pytest.raises(NotFound):
            await service.get_appointment(session, actor.principal, moved.id)
        assert (
            await service.list_appointments(session, actor.principal, day_from=slots[0][0].starts_at.date())
            == []
        )
    cancelled = await service.cancel_appointment(
        session, secretary.principal, moved.id, "Patient hospitalisé"
    )
    assert cancelled.status == "cancelled"


async def test_a_secretariat_books_only_its_own_doctors(session, world, desk):
    """The EHPAD may request the CHU's offer, but the CHU's secretary cannot book another hospital's doctors,
    nor a patient her hospital does not follow."""
    secretary, other_secretary = desk
    with pytest.raises(NotFound):  # another hospital's offer: not even its slots
        await service.list_free_slots(session, other_secretary.principal, world.offer_id, Settings())
    patient_elsewhere, _ = await patients_service.register_patient(
        session, other_secretary.principal, patient_data(birth_family_name="Morvan", birth_given_names="Loïc")
    )
    slots = await service.list_free_slots(session, world.nurse.principal, world.offer_id, Settings())
    with pytest.raises(NotFound):  # a patient of the CH de Redon only
        await service.book_appointment(
            session,
            secretary.principal,
            AppointmentCreate(
                slot_id=slots[0][0].id,
                patient_id=patient_elsewhere.id,
                reason="Bilan gériatrique",
                callback_phone="",
            ),
        )
    with pytest.raises(Forbidden):  # its own patient, another hospital's doctor
        await service.book_appointment(
            session,
            other_secretary.principal,
            AppointmentCreate(
                slot_id=slots[0][0].id,
                patient_id=patient_elsewhere.id,
                reason="Bilan gériatrique",
                callback_phone="",
            ),
        )
    offers = await service.bookable_offers(session, secretary.principal)
    assert [o.id for o in offers] == [world.offer_id]
    assert await service.bookable_offers(session, other_secretary.principal) == []
    # an offer of the CHU that is not a teleconsultation is not bookable
    await offer_service.create_offer(
        session,
        world.admin.principal,
        OfferCreate(
            organisation_id=world.chu_id,
            title="Avis de gériatrie",
            act_type=ActType.TELEEXPERTISE,
            specialty="Gériatrie",
            form_code="question_generique",
            routing=Routing.POOL,
            response_minutes=60 * 24,
        ),
    )
    assert [o.id for o in await service.bookable_offers(session, secretary.principal)] == [world.offer_id]


async def test_the_secretariat_through_the_api_and_the_pages(client, session, world, desk):
    secretary, other_secretary = desk
    headers = await token_for(session, secretary)
    created = await client.post(
        "/api/patients",
        json=patient_data(birth_family_name="Guillou", birth_given_names="Marie").model_dump(mode="json"),
        headers=headers,
    )
    assert created.status_code == 201, created.text
    patient_id = created.json()["patient"]["id"]
    await give_consent(session, world.nurse, world.patient_id, "teleconsultation")
    slots = (
        await client.get(
            f"/api/scheduling/offers/{world.offer_id}/slots", params={"days": 2}, headers=headers
        )
    ).json()
    booked = await client.post(
        "/api/scheduling/appointments",
        json={
            "slot_id": slots[0]["id"],
            "patient_id": patient_id,
            "reason": "Bilan de chutes",
            "callback_phone": "",
        },
        headers=headers,
    )
    assert booked.status_code == 201, booked.text
    appointment_id = booked.json()["id"]
    assert (await client.get(f"/api/patients/{patient_id}", headers=headers)).status_code == 200
    for path in (f"/api/patients/{patient_id}/consents", f"/api/patients/{world.patient_id}"):
        assert (await client.get(path, headers=headers)).status_code == 404, path
    prepared = await client.post(
        f"/api/scheduling/appointments/{appointment_id}/prepare",
        json={
            "physical_exam_needed": False,
            "bad_news": False,
            "data_unavailable": False,
            "communication_impossible": False,
            "callback_phone": "0299000000",
        },
        headers=headers,
    )
    assert prepared.status_code == 404
    other = await token_for(session, other_secretary)
    for path in (f"/api/patients/{patient_id}", f"/api/scheduling/appointments/{appointment_id}"):
        assert (await client.get(path, headers=other)).status_code == 404, path

    await sign_in(client, secretary)
    home = await client.get("/")
    assert "Secrétariat médical" in home.text and 'href="/demandes"' not in home.text
    record = await client.get(f"/patients/{patient_id}")
    assert record.status_code == 200 and 'id="secretariat-scope"' in record.text
    assert 'id="consentements"' not in record.text and "Qui a consulté ce dossier" not in record.text
    assert "Alerte AVC" not in record.text
    page = await client.get(f"/rendez-vous/{appointment_id}")
    assert (
        page.status_code == 200
        and 'id="preparation"' not in page.text
        and 'id="secretariat-scope"' in page.text
    )
    assert (await client.get(f"/video/rendez-vous/{appointment_id}")).status_code == 404
    agenda = await client.get("/rendez-vous?jour=" + slots[0]["starts_at"][:10])
    assert agenda.status_code == 200 and "GUILLOU" in agenda.text.upper()
    cancelled = await post_form(
        client,
        f"/rendez-vous/{appointment_id}/annuler",
        {"cancel_reason": "Le patient a appelé"},
        page=f"/rendez-vous/{appointment_id}",
    )
    assert cancelled.status_code == 303, cancelled.text
    after = await client.get(f"/api/scheduling/appointments/{appointment_id}", headers=headers)
    assert after.json()["status"] == "cancelled" and after.json()["cancel_reason"] == "Le patient a appelé"
