"""The Encounter search over a teleconsultation's call (class VR): found by patient (or subject) and by the act it is
based on, as the stroke cases are, narrowed by class, status and date, paged with a consistent total; the treating
side and the doctor's side find it, the colleague elsewhere and the outsider find nothing (the appointment's rule)."""

# The scheduling region and its prepared appointment are imported from their suites (fixtures); ruff sees each
# test's parameter of the same name as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import json
import uuid

from fhir.resources.R4B.encounter import Encounter
from fhirpy import AsyncFHIRClient

from telesante.audit.repository import AuditRepository
from telesante.kit.pagination import PageRequest
from telesante.video import service as video
from telesante.video.models import CallEventKind
from telesante.video.signalling import HOST, PROFESSIONAL
from tests.factories import token_for
from tests.fhir.test_api import bundle
from tests.fhir.test_fhirpy import fhir_url  # noqa: F401
from tests.scheduling.conftest import frozen_clock, world  # noqa: F401 - frozen_clock is autouse
from tests.video.conftest import appointment, booked  # noqa: F401


async def _call(session, world, appointment) -> dict[str, str]:
    """The nurse opens the appointment's call, the doctor joins and admits her: in progress. Plain values only."""
    room = await video.open_room(session, world.nurse.principal, appointment.id)
    await video.record_call_event(session, str(room.id), CallEventKind.JOINED, "a-d", "Dr", {"role": HOST})
    await video.record_call_event(
        session, str(room.id), CallEventKind.ADMITTED, "a-n", "IDE", {"role": PROFESSIONAL}
    )
    return {
        "room_id": str(room.id),
        "appointment_id": str(appointment.id),
        "request_id": str(appointment.request_id),
        "patient_id": str(world.patient_id),
    }


async def test_the_call_of_a_teleconsultation_is_found_by_patient(session, client, world, appointment):
    call = await _call(session, world, appointment)
    patient_ref = f"Patient/{call['patient_id']}"
    tokens = {
        name: await token_for(session, actor)
        for name, actor in (
            ("nurse", world.nurse),
            ("doctor", world.doctor),
            ("colleague", world.colleague),
            ("outsider", world.outsider),
        )
    }
    accounts = {name: getattr(world, name).account.id for name in tokens}
    room_id = call["room_id"]
    for name in ("nurse", "doctor"):  # the booking side and the doctor's side
        headers = tokens[name]
        for params, expected in (
            ({"patient": patient_ref}, [room_id]),
            ({"subject": call["patient_id"]}, [room_id]),
            ({"based-on": f"ServiceRequest/{call['request_id']}"}, [room_id]),
            ({"patient": patient_ref, "based-on": call["request_id"]}, [room_id]),
            ({"patient": patient_ref, "class": "VR"}, [room_id]),
            ({"patient": patient_ref, "class": "EMER"}, []),
            ({"patient": patient_ref, "status": "in-progress"}, [room_id]),
            ({"patient": patient_ref, "status": "finished"}, []),
            ({"patient": patient_ref, "date": "2026-12-01"}, [room_id]),
            ({"patient": patient_ref, "date": "lt2026-11-30"}, []),
            ({"appointment": f"Appointment/{call['appointment_id']}"}, [room_id]),
            ({"appointment": call["appointment_id"], "class": "EMER"}, []),
        ):
            found = bundle(await client.get("/fhir/Encounter", params=params, headers=headers))
            assert [e.resource.id for e in found.entry or []] == expected, (name, params)
            assert found.total == len(expected), (name, params)
        [encounter] = [
            e.resource
            for e in bundle(
                await client.get("/fhir/Encounter", params={"patient": patient_ref}, headers=headers)
            ).entry
        ]
        assert isinstance(encounter, Encounter) and encounter.class_fhir.code == "VR"
        assert [c.code for c in encounter.serviceType.coding] == ["teleconsultation"]
        assert encounter.appointment[0].reference == f"Appointment/{call['appointment_id']}"
        assert [ref.reference for ref in encounter.basedOn] == [f"ServiceRequest/{call['request_id']}"]
        assert encounter.partOf is None
        paged = bundle(
            await client.get(
                "/fhir/Encounter", params={"patient": patient_ref, "_count": "0"}, headers=headers
            )
        )
        assert paged.total == 1 and not paged.entry

    for name in ("colleague", "outsider"):
        for params in (
            {"patient": patient_ref},
            {"based-on": f"ServiceRequest/{call['request_id']}"},
            {"patient": patient_ref, "class": "VR"},
        ):
            found = bundle(await client.get("/fhir/Encounter", params=params, headers=tokens[name]))
            assert found.total == 0 and not found.entry, (name, params)

    # what the searches showed is audited with the patient; nothing for the colleague nor the outsider
    events = (
        await AuditRepository(session).list_for_patient(uuid.UUID(call["patient_id"]), PageRequest(0, 500))
    ).items
    searched = {
        e.account_id
        for e in events
        if e.action == "search"
        and e.channel == "fhir"
        and e.object_type == "VideoRoom"
        and e.object_id == room_id
        and json.loads(e.details) == {"resource": "Encounter"}
    }
    assert searched == {accounts["nurse"], accounts["doctor"]}
    assert not [e for e in events if e.account_id in {accounts["colleague"], accounts["outsider"]}]


async def test_fhirpy_finds_the_call_by_patient(fhir_url, session, world, appointment):
    call = await _call(session, world, appointment)
    nurse = AsyncFHIRClient(fhir_url, authorization=(await token_for(session, world.nurse))["Authorization"])
    found = await nurse.resources("Encounter").search(patient=f"Patient/{call['patient_id']}").fetch_all()
    assert [(e.id, e["class"]["code"], e["status"]) for e in found] == [
        (call["room_id"], "VR", "in-progress")
    ]
    outsider = AsyncFHIRClient(
        fhir_url, authorization=(await token_for(session, world.outsider))["Authorization"]
    )
    assert await outsider.resources("Encounter").search(patient=call["patient_id"]).fetch() == []
