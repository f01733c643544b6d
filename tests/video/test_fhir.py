"""Teleconsultation scheduling and calls through the FHIR facade, read by a real client (fhirpy): Schedule and free
Slots of a doctor, the Appointment (booked, then fulfilled, pointing to its act), the call as an Encounter of class
VR; the colleague elsewhere and the outsider see none of the patient's resources."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from telesante.config import Settings
from telesante.scheduling import service as scheduling
from telesante.video import service as video
from telesante.video.models import CallEventKind
from telesante.video.signalling import HOST, PROFESSIONAL
from tests.factories import token_for
from tests.fhir.test_fhirpy import fhir_url  # noqa: F401 - the served app, as a fixture


def client_for(url: str, headers: dict[str, str]) -> AsyncFHIRClient:
    return AsyncFHIRClient(url, authorization=headers["Authorization"])


async def test_schedule_slot_appointment_encounter(fhir_url, session, world, appointment):  # noqa: F811
    nurse = await token_for(session, world.nurse)
    doctor_id, patient_id, appointment_id = world.doctor.professional.id, world.patient_id, appointment.id
    room = await video.open_room(session, world.nurse.principal, appointment.id)
    room_id, request_id = room.id, appointment.request_id
    await video.record_call_event(session, str(room.id), CallEventKind.JOINED, "a-d", "Dr", {"role": HOST})
    await video.record_call_event(
        session, str(room.id), CallEventKind.ADMITTED, "a-n", "IDE", {"role": PROFESSIONAL}
    )
    fhir = client_for(fhir_url, nurse)

    schedules = await fhir.resources("Schedule").search(actor=f"Practitioner/{doctor_id}").fetch()
    assert len(schedules) == 1 and schedules[0]["serviceType"][0]["coding"][0]["code"] == "teleconsultation"
    schedule_id = schedules[0]["id"]
    slots = await fhir.resources("Slot").search(schedule=f"Schedule/{schedule_id}", status="free").fetch()
    assert slots and all(s["status"] == "free" for s in slots)
    assert all(s["schedule"]["reference"] == f"Schedule/{schedule_id}" for s in slots)
    one = await fhir.reference("Slot", slots[0]["id"]).to_resource()
    assert one["start"] == slots[0]["start"]

    found = (
        await fhir.resources("Appointment")
        .search(patient=f"Patient/{patient_id}", date="ge2026-12-01")
        .fetch()
    )
    assert [a["id"] for a in found] == [str(appointment_id)]
    read = await fhir.reference("Appointment", str(appointment_id)).to_resource()
    assert read["status"] == "booked" and read["basedOn"][0]["reference"] == f"ServiceRequest/{request_id}"
    assert {p["actor"]["reference"] for p in read["participant"]} == {
        f"Patient/{patient_id}",
        f"Practitioner/{doctor_id}",
    }
    encounters = await fhir.resources("Encounter").search(appointment=f"Appointment/{appointment_id}").fetch()
    assert len(encounters) == 1
    encounter = encounters[0]
    assert encounter["id"] == str(room_id) and encounter["class"]["code"] == "VR"
    assert (
        encounter["status"] == "in-progress"
        and encounter["appointment"][0]["reference"] == f"Appointment/{appointment_id}"
    )

    for actor in (world.colleague, world.outsider):
        other = client_for(fhir_url, await token_for(session, actor))
        with pytest.raises(ResourceNotFound):
            await other.reference("Appointment", str(appointment_id)).to_resource()
        with pytest.raises(ResourceNotFound):
            await other.reference("Encounter", str(room_id)).to_resource()
        assert await other.resources("Appointment").search(date="ge2026-12-01").fetch() == []
        assert (
            await other.resources("Encounter").search(appointment=f"Appointment/{appointment_id}").fetch()
            == []
        )


async def test_bad_searches_get_an_operation_outcome(fhir_url, session, world, appointment):  # noqa: F811
    headers = await token_for(session, world.nurse)
    async with httpx.AsyncClient(base_url=fhir_url, headers=headers) as client:
        for path, params, field in (
            ("/Schedule", {}, "actor"),
            ("/Slot", {"schedule": f"Schedule/{uuid.uuid4()}", "status": "busy"}, "status"),
            ("/Slot", {}, "schedule"),
            ("/Appointment", {"date": ["ge2026-01-01", "lt2026-12-31"]}, "date"),
            ("/Appointment", {"status": "perhaps"}, "status"),
            ("/Encounter", {}, "appointment"),
        ):
            response = await client.get(path, params=params)
            assert response.status_code == 400, (path, response.text)
            assert response.json()["resourceType"] == "OperationOutcome" and field in response.text
        assert (await client.get(f"/Appointment/{uuid.uuid4()}")).status_code == 404
        assert (await client.get("/Slot/pas-un-uuid")).status_code == 404
        metadata = (await client.get("/metadata")).json()
        types = {r["type"] for r in metadata["rest"][0]["resource"]}
        assert {"Schedule", "Slot", "Appointment", "Encounter"} <= types


async def test_fulfilled_appointment_after_the_report(fhir_url, session, world, appointment, tmp_path):  # noqa: F811
    from datetime import timedelta

    from telesante.kit import clock
    from telesante.requests.schemas import ReportCreate
    from telesante.storage.blobs import FilesystemBlobStore

    room = await video.open_room(session, world.nurse.principal, appointment.id)
    await video.record_call_event(session, str(room.id), CallEventKind.JOINED, "a-d", "Dr", {"role": HOST})
    ended = clock.as_utc(appointment.starts_at) + timedelta(minutes=20)
    clock.set_clock(lambda: ended)
    await video.finish_call(
        session,
        world.doctor.principal,
        Settings(),
        FilesystemBlobStore(tmp_path / "blobs"),
        room.id,
        ReportCreate(
            conclusion="Pas de signe de gravité.",
            prescriptions="aucune",
            participants=[{"name": "Dr", "role": "médecin téléconsultant"}],
            performed_at=appointment.starts_at,
            technical_incident=False,
        ),
    )
    fhir = client_for(fhir_url, await token_for(session, world.doctor))
    read = await fhir.reference("Appointment", str(appointment.id)).to_resource()
    assert read["status"] == "fulfilled"
    encounter = await fhir.reference("Encounter", str(room.id)).to_resource()
    assert encounter["status"] == "finished" and "end" in encounter["period"]
    await scheduling.get_appointment(
        session, world.doctor.principal, appointment.id
    )  # still readable, audited
