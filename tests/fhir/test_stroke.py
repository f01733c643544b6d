"""TéléAVC through the FHIR facade: the stroke case as an Encounter (class EMER) based on the neurology opinion's
ServiceRequest, its Observations (NIHSS total and items, blood pressure, weight, glucose, platelets, INR), read by
httpx and by a real FHIR client (fhirpy); the three actors; bad input gets an OperationOutcome, never a 500."""

# The stroke network's fixtures (network, patient, frozen) and the served app (fhir_url) are imported from their
# suites; ruff sees each test's parameter of the same name as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from telesante.audit.repository import AuditRepository
from telesante.directory.models import Role
from telesante.kit.pagination import PageRequest
from telesante.requests.schemas import ReportCreate
from telesante.storage.blobs import FilesystemBlobStore
from telesante.stroke import service
from telesante.stroke.models import Disposition, TransportMode
from telesante.stroke.schemas import DecisionCreate, MeasuresUpdate, NihssCreate
from tests.factories import make_actor, make_patient, token_for
from tests.fhir.test_api import bundle, outcome
from tests.fhir.test_fhirpy import fhir_url  # noqa: F401
from tests.stroke.conftest import T0, frozen, network, patient  # noqa: F401
from tests.stroke.test_service import ARRIVAL, NIHSS_14, alert

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NEURO_NIHSS = {**NIHSS_14, "9": 3, "6a": "UN"}  # 15: the neurologist confirms, one leg untestable


async def _story(session, settings, network, patient, frozen, *, decide: bool = True) -> dict[str, str]:
    """The night case through the real services: alert and NIHSS 14 by the emergency doctor (T0), the neurologist
    takes it (T0+5), the measures, the neurologist's NIHSS 15 (T0+10), and the decision: thrombectomy in the
    interventional centre, by helicopter. Plain values only (a refused request expires ORM objects)."""
    ed, neuro = network.emergency.principal, network.neurologist.principal
    case = await service.create_alert(session, ed, settings, alert(patient.id))
    ed_nihss = await service.record_nihss(session, ed, case.id, NihssCreate(items=NIHSS_14))
    frozen.advance(minutes=5)
    await service.acknowledge(session, neuro, case.id)
    await service.record_measures(
        session,
        ed,
        case.id,
        MeasuresUpdate(
            systolic=172, diastolic=95, glucose_mmol=6.4, platelets=230_000, inr=1.1, weight_kg=70.5
        ),
    )
    frozen.advance(minutes=5)
    neuro_nihss = await service.record_nihss(session, neuro, case.id, NihssCreate(items=NEURO_NIHSS))
    if decide:
        await service.decide(
            session,
            neuro,
            settings,
            case.id,
            DecisionCreate(
                disposition=Disposition.TRANSFER,
                thrombectomy=True,
                reasons="Occlusion de l'artère cérébrale moyenne gauche, sous anticoagulant",
                receiving_organisation_id=network.thrombectomy_centre.id,
                transport_mode=TransportMode.HELICOPTER,
            ),
        )
    return {
        "case_id": str(case.id),
        "case_hex": case.id.hex,
        "request_id": str(case.request_id),
        "patient_id": str(case.patient_id),
        "organisation_id": str(case.organisation_id),
        "ed_nihss": str(ed_nihss.id),
        "neuro_nihss": str(neuro_nihss.id),
        "emergency": str(network.emergency.professional.id),
        "neurologist": str(network.neurologist.professional.id),
        "centre": str(network.thrombectomy_centre.id),
    }


def _entries(response) -> list:
    return [entry.resource for entry in bundle(response).entry or []]


def _coding(concept) -> tuple[str, str]:
    return concept.coding[0].system, concept.coding[0].code


# --- Encounter ---------------------------------------------------------------------------------------------------


async def test_an_alert_is_a_triaged_emergency_encounter(session, settings, client, network, patient):
    case = await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    response = await client.get(
        f"/fhir/Encounter/{case.id}", headers=await token_for(session, network.emergency)
    )
    assert response.status_code == 200, response.text
    encounter = Encounter.model_validate_json(response.content)
    assert (encounter.status, encounter.class_fhir.code) == ("triaged", "EMER")
    assert [h.status for h in encounter.statusHistory] == ["arrived", "triaged"]
    assert encounter.statusHistory[1].period.start == T0 and encounter.statusHistory[1].period.end is None
    assert [p.type[0].coding[0].code for p in encounter.participant] == ["ATND"]  # no neurologist yet
    assert encounter.hospitalization is None


async def test_the_case_as_an_encounter_based_on_the_neurology_opinion(
    session, settings, client, network, patient, frozen
):
    story = await _story(session, settings, network, patient, frozen)
    neurologist = await token_for(session, network.neurologist)
    response = await client.get(f"/fhir/Encounter/{story['case_id']}", headers=neurologist)
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/fhir+json"
    )
    encounter = Encounter.model_validate_json(response.content)
    assert encounter.id == story["case_id"] and encounter.status == "in-progress"
    assert (encounter.class_fhir.system, encounter.class_fhir.code) == (
        "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "EMER",
    )
    assert encounter.period.start == ARRIVAL and encounter.period.end is None
    assert [(h.status, h.period.start, h.period.end) for h in encounter.statusHistory] == [
        ("arrived", ARRIVAL, T0),
        ("triaged", T0, T0 + timedelta(minutes=5)),
        ("in-progress", T0 + timedelta(minutes=5), None),
    ]
    assert encounter.subject.reference == f"Patient/{story['patient_id']}"
    assert encounter.serviceProvider.reference == f"Organization/{story['organisation_id']}"
    assert encounter.serviceProvider.display == "CH de Guingamp"
    assert [ref.reference for ref in encounter.basedOn] == [f"ServiceRequest/{story['request_id']}"]
    assert {(p.type[0].coding[0].code, p.individual.reference) for p in encounter.participant} == {
        ("ATND", f"Practitioner/{story['emergency']}"),
        ("CON", f"Practitioner/{story['neurologist']}"),
    }
    assert _coding(encounter.reasonCode[0]) == ("http://snomed.info/sct", "230690007")
    assert _coding(encounter.priority) == ("http://terminology.hl7.org/CodeSystem/v3-ActPriority", "EM")
    assert encounter.hospitalization.destination.reference == f"Organization/{story['centre']}"
    assert _coding(encounter.hospitalization.dischargeDisposition)[1] == "other-hcf"
    assert "Hélicoptère" in encounter.hospitalization.dischargeDisposition.text

    # the opinion it is based on stays readable by the case's parties, as ServiceRequest and as Task
    emergency = await token_for(session, network.emergency)
    for headers in (neurologist, emergency):
        for kind in ("ServiceRequest", "Task"):
            read = await client.get(f"/fhir/{kind}/{story['request_id']}", headers=headers)
            assert read.status_code == 200, (kind, read.text)
            assert read.json()["resourceType"] == kind

    # searches: by patient (or subject), by the opinion, narrowed by status, class and date
    patient_ref = f"Patient/{story['patient_id']}"
    for params, expected in (
        ({"patient": patient_ref}, [story["case_id"]]),
        ({"subject": story["patient_id"]}, [story["case_id"]]),
        ({"patient": patient_ref, "subject": story["patient_id"]}, [story["case_id"]]),
        ({"based-on": f"ServiceRequest/{story['request_id']}"}, [story["case_id"]]),
        ({"patient": patient_ref, "status": "in-progress"}, [story["case_id"]]),
        ({"patient": patient_ref, "status": "finished"}, []),
        ({"patient": patient_ref, "class": "EMER"}, [story["case_id"]]),
        ({"patient": patient_ref, "class": "VR"}, []),
        ({"patient": patient_ref, "date": "2026-12-02"}, [story["case_id"]]),
        ({"patient": patient_ref, "date": ["ge2026-11-01", "lt2026-12-01"]}, []),
        ({"patient": patient_ref, "date": "ge2026-12-03"}, [story["case_id"]]),  # still running
    ):
        found = _entries(await client.get("/fhir/Encounter", params=params, headers=neurologist))
        assert [e.id for e in found] == expected, params
        assert all(isinstance(e, Encounter) for e in found)

    # every read and every case found is audited with the patient
    audit = AuditRepository(session)
    events = (await audit.list_for_patient(uuid.UUID(story["patient_id"]), PageRequest(0, 100))).items
    fhir_events = [e for e in events if e.channel == "fhir" and e.object_type == "StrokeCase"]
    assert {e.action for e in fhir_events} == {"read", "search"}
    assert all(e.account_id == network.neurologist.account.id for e in fhir_events)


async def test_a_closed_case_is_a_finished_encounter(
    session, settings, client, network, patient, frozen, tmp_path
):
    story = await _story(session, settings, network, patient, frozen)
    frozen.advance(minutes=20)
    await service.sign_report(
        session,
        network.neurologist.principal,
        settings,
        FilesystemBlobStore(tmp_path / "blobs"),
        uuid.UUID(story["case_id"]),
        ReportCreate(
            conclusion="Thrombectomie indiquée ; transfert héliporté.",
            prescriptions="aucune",
            participants=[{"name": "Dr Neuro", "role": "neurologue de garde"}],
            performed_at=T0,
            technical_incident=False,
        ),
    )
    headers = await token_for(session, network.emergency)
    encounter = Encounter.model_validate_json(
        (await client.get(f"/fhir/Encounter/{story['case_id']}", headers=headers)).content
    )
    closed = T0 + timedelta(minutes=30)
    assert (encounter.status, encounter.period.end) == ("finished", closed)
    assert encounter.statusHistory[-1].period.end == closed
    found = _entries(
        await client.get(
            "/fhir/Encounter", params={"patient": story["patient_id"], "status": "finished"}, headers=headers
        )
    )
    assert [e.id for e in found] == [story["case_id"]]


# --- Observation -------------------------------------------------------------------------------------------------


def _by_code(observations: list[Observation]) -> dict[str, list[Observation]]:
    found: dict[str, list[Observation]] = {}
    for observation in observations:
        system, code = _coding(observation.code)
        assert system == LOINC
        found.setdefault(code, []).append(observation)
    return found


def _quantity(value) -> tuple[Decimal, str, str, str]:
    return value.value, value.unit, value.system, value.code


async def test_the_observations_of_the_case(session, settings, client, network, patient, frozen):
    story = await _story(session, settings, network, patient, frozen)
    headers = await token_for(session, network.emergency)
    response = await client.get(
        "/fhir/Observation", params={"encounter": f"Encounter/{story['case_id']}"}, headers=headers
    )
    observations = _entries(response)
    assert all(isinstance(o, Observation) for o in observations) and len(observations) == 7
    assert all(o.subject.reference == f"Patient/{story['patient_id']}" for o in observations)
    assert all(o.encounter.reference == f"Encounter/{story['case_id']}" for o in observations)
    assert all(o.status == "final" for o in observations)
    codes = _by_code(observations)
    assert set(codes) == {"72089-6", "85354-9", "29463-7", "15074-8", "777-3", "6301-6"}

    # NIHSS: one Observation per assessment, the total as value, the 15 items as components
    ed, neuro = codes["72089-6"]
    assert (ed.id, neuro.id) == (story["ed_nihss"], story["neuro_nihss"])
    assert (ed.valueInteger, neuro.valueInteger) == (14, 15)
    assert (ed.effectiveDateTime, neuro.effectiveDateTime) == (T0, T0 + timedelta(minutes=10))
    assert (ed.method.coding[0].code, neuro.method.coding[0].code) == ("bedside", "video")
    assert _coding(ed.category[0]) == ("http://terminology.hl7.org/CodeSystem/observation-category", "survey")
    assert ed.performer[0].reference == f"Practitioner/{story['emergency']}"
    assert neuro.performer[0].reference == f"Practitioner/{story['neurologist']}"
    items = {c.code.coding[0].code: c for c in neuro.component}
    assert list(items) == list(NIHSS_14) and len(items) == 15
    assert {c.code.coding[0].system for c in neuro.component} == {"urn:telesante:avc:item-nihss"}
    assert items["9"].valueInteger == 3 and items["5b"].valueInteger == 3
    assert (
        items["6a"].valueInteger is None and items["6a"].dataAbsentReason.coding[0].code == "not-applicable"
    )
    assert sum(c.valueInteger or 0 for c in neuro.component) == neuro.valueInteger

    # vital signs (FHIR vital-signs profiles): blood pressure panel, body weight
    measured = T0 + timedelta(minutes=5)
    [bp] = codes["85354-9"]
    assert bp.id == f"avc-{story['case_hex']}-bp" and bp.effectiveDateTime == measured
    assert _coding(bp.category[0])[1] == "vital-signs" and bp.meta.profile == [
        "http://hl7.org/fhir/StructureDefinition/bp"
    ]
    components = {c.code.coding[0].code: _quantity(c.valueQuantity) for c in bp.component}
    assert components == {"8480-6": (172, "mmHg", UCUM, "mm[Hg]"), "8462-4": (95, "mmHg", UCUM, "mm[Hg]")}
    [weight] = codes["29463-7"]
    assert _quantity(weight.valueQuantity) == (Decimal("70.5"), "kg", UCUM, "kg")
    assert weight.meta.profile == ["http://hl7.org/fhir/StructureDefinition/bodyweight"]

    # laboratory: glucose in mmol/L (moles/volume code), platelets per µL / 1000, INR
    labs = [codes[code][0] for code in ("15074-8", "777-3", "6301-6")]
    assert all(_coding(o.category[0])[1] == "laboratory" for o in labs)
    assert [_quantity(o.valueQuantity) for o in labs] == [
        (Decimal("6.4"), "mmol/L", UCUM, "mmol/L"),
        (Decimal("230"), "10³/µL", UCUM, "10*3/uL"),
        (Decimal("1.1"), "INR", UCUM, "{INR}"),
    ]

    # each one is read back by its id, identical
    for observation in observations:
        read = await client.get(f"/fhir/Observation/{observation.id}", headers=headers)
        assert read.status_code == 200, (observation.id, read.text)
        assert Observation.model_validate_json(read.content) == observation

    # searches by patient, code, category, date
    patient_ref = f"Patient/{story['patient_id']}"
    for params, expected in (
        ({"patient": patient_ref}, 7),
        ({"subject": patient_ref, "code": f"{LOINC}|72089-6"}, 2),
        ({"patient": patient_ref, "code": "72089-6"}, 2),
        ({"patient": patient_ref, "code": "http://snomed.info/sct|72089-6"}, 0),
        ({"patient": patient_ref, "code": "2339-0"}, 0),  # mass/volume glucose: not what is stored
        ({"patient": patient_ref, "category": "laboratory"}, 3),
        ({"patient": patient_ref, "category": "vital-signs"}, 2),
        (
            {
                "encounter": story["case_id"],
                "category": "survey",
                "date": f"ge{(T0 + timedelta(minutes=1)).isoformat()}",
            },
            1,
        ),
        ({"patient": patient_ref, "date": "2026-12-01"}, 0),
        ({"patient": patient_ref, "_count": "3"}, 3),
    ):
        found = bundle(await client.get("/fhir/Observation", params=params, headers=headers))
        assert len(found.entry or []) == expected, (params, found.total)
    paged = bundle(
        await client.get("/fhir/Observation", params={"patient": patient_ref, "_count": "3"}, headers=headers)
    )
    assert paged.total == 7 and any(link.relation == "next" for link in paged.link)


async def test_measures_not_given_are_not_published(session, settings, client, network, patient):
    case = await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    await service.record_measures(session, network.emergency.principal, case.id, MeasuresUpdate(weight_kg=82))
    case_id, case_hex = str(case.id), case.id.hex
    headers = await token_for(session, network.emergency)
    found = _entries(await client.get("/fhir/Observation", params={"encounter": case_id}, headers=headers))
    assert [o.id for o in found] == [f"avc-{case_hex}-weight"]  # no NIHSS yet, no blood pressure, no labs
    for measure in ("bp", "glucose", "platelets", "inr"):
        outcome(await client.get(f"/fhir/Observation/avc-{case_hex}-{measure}", headers=headers), 404)


# --- a real client ---------------------------------------------------------------------------------------------


async def test_fhirpy_reads_the_encounter_and_its_observations(
    fhir_url,
    session,
    settings,
    network,
    patient,
    frozen,
):
    story = await _story(session, settings, network, patient, frozen)
    neurologist = await token_for(session, network.neurologist)
    client = AsyncFHIRClient(fhir_url, authorization=neurologist["Authorization"])
    encounter = await client.reference("Encounter", story["case_id"]).to_resource()
    assert encounter["class"]["code"] == "EMER" and encounter["status"] == "in-progress"
    assert encounter["basedOn"][0]["reference"] == f"ServiceRequest/{story['request_id']}"
    request = await client.reference("ServiceRequest", story["request_id"]).to_resource()
    assert request["subject"]["reference"] == f"Patient/{story['patient_id']}"
    task = await client.reference("Task", story["request_id"]).to_resource()
    assert task["focus"]["reference"] == f"ServiceRequest/{story['request_id']}"

    observations = (
        await client.resources("Observation")
        .search(encounter=f"Encounter/{story['case_id']}")
        .limit(2)
        .fetch_all()
    )  # three pages, following the Bundle's next links
    assert len(observations) == 7
    totals = sorted(o["valueInteger"] for o in observations if o["code"]["coding"][0]["code"] == "72089-6")
    assert totals == [14, 15]
    by_patient = await client.resources("Encounter").search(patient=f"Patient/{story['patient_id']}").fetch()
    assert [e.id for e in by_patient] == [story["case_id"]]

    for actor in (network.colleague, network.outsider):
        other = AsyncFHIRClient(fhir_url, authorization=(await token_for(session, actor))["Authorization"])
        with pytest.raises(ResourceNotFound):
            await other.reference("Encounter", story["case_id"]).to_resource()
        with pytest.raises(ResourceNotFound):
            await other.reference("Observation", story["ed_nihss"]).to_resource()
        assert (
            await other.resources("Observation").search(encounter=f"Encounter/{story['case_id']}").fetch()
            == []
        )
        assert (
            await other.resources("Encounter").search(patient=f"Patient/{story['patient_id']}").fetch() == []
        )


# --- the call of the case --------------------------------------------------------------------------------------


async def test_the_call_of_the_case_is_a_virtual_encounter_part_of_it(
    session, settings, client, network, patient, frozen
):
    story = await _story(session, settings, network, patient, frozen, decide=False)
    room = await service.open_video(session, network.neurologist.principal, uuid.UUID(story["case_id"]))
    room_id = str(room.id)
    headers = await token_for(session, network.emergency)
    response = await client.get(f"/fhir/Encounter/{room_id}", headers=headers)
    assert response.status_code == 200, response.text
    call = Encounter.model_validate_json(response.content)
    assert call.class_fhir.code == "VR" and call.appointment is None
    assert [ref.reference for ref in call.basedOn] == [f"ServiceRequest/{story['request_id']}"]
    assert call.partOf.reference == f"Encounter/{story['case_id']}"
    assert [c.code for c in call.serviceType.coding] == ["teleexpertise"]  # the act is a tele-expertise
    found = _entries(
        await client.get(
            "/fhir/Encounter", params={"part-of": f"Encounter/{story['case_id']}"}, headers=headers
        )
    )
    assert [e.id for e in found] == [room_id]
    narrowed = _entries(
        await client.get(
            "/fhir/Encounter",
            params={"part-of": f"Encounter/{story['case_id']}", "class": "EMER"},
            headers=headers,
        )
    )
    assert narrowed == []
    for other in [await token_for(session, a) for a in (network.colleague, network.outsider)]:
        outcome(await client.get(f"/fhir/Encounter/{room_id}", headers=other), 404)
        assert (
            _entries(await client.get("/fhir/Encounter", params={"part-of": story["case_id"]}, headers=other))
            == []
        )


# --- three actors --------------------------------------------------------------------------------------------


async def test_only_the_parties_of_the_case_see_it(session, settings, client, network, patient, frozen):
    story = await _story(session, settings, network, patient, frozen)
    interventional = await make_actor(session, network.thrombectomy_centre, Role.EXPERT)
    parties = [
        await token_for(session, a) for a in (network.emergency, network.ed_nurse, network.neurologist)
    ]
    centre = await token_for(session, interventional)
    strangers = [await token_for(session, a) for a in (network.colleague, network.outsider)]
    case_url = f"/fhir/Encounter/{story['case_id']}"
    reads = [
        case_url,
        f"/fhir/Observation/{story['ed_nihss']}",
        f"/fhir/Observation/avc-{story['case_hex']}-bp",
        f"/fhir/Observation/avc-{story['case_hex']}-inr",
        f"/fhir/ServiceRequest/{story['request_id']}",
        f"/fhir/Task/{story['request_id']}",
    ]
    searches = [
        ("/fhir/Encounter", {"patient": story["patient_id"]}),
        ("/fhir/Encounter", {"based-on": f"ServiceRequest/{story['request_id']}"}),
        ("/fhir/Observation", {"patient": story["patient_id"]}),
        ("/fhir/Observation", {"encounter": f"Encounter/{story['case_id']}"}),
    ]
    for headers in parties:
        for url in reads:
            assert (await client.get(url, headers=headers)).status_code == 200, url
        for url, params in searches:
            assert bundle(await client.get(url, params=params, headers=headers)).total, (url, params)
    # the receiving centre sees the case once the transfer is decided (the stroke case's rule), and with it the
    # neurology opinion its Encounter is based on (ServiceRequest, Task)
    for url in reads:
        assert (await client.get(url, headers=centre)).status_code == 200, url
    for url, params in searches:
        assert bundle(await client.get(url, params=params, headers=centre)).total, (url, params)
    for headers in strangers:
        for url in reads:
            response = await client.get(url, headers=headers)
            outcome(response, 404)
            assert "LE BIHAN" not in response.text.upper()
        for url, params in searches:
            found = bundle(await client.get(url, params=params, headers=headers))
            assert found.total == 0 and not found.entry, (url, params)


# --- the receiving centre and the neurology opinion --------------------------------------------------------


async def test_the_receiving_centre_reads_the_opinion_once_the_transfer_is_decided(
    session, settings, client, network, patient, frozen
):
    """The request's rule does not name the receiving centre; the case's does. The centre reads the ServiceRequest
    and the Task of the case's opinion (what the Encounter it sees is based on), audited, and nothing more: not the
    request's other resources, not its JSON API, not another case's opinion, no change."""
    story = await _story(session, settings, network, patient, frozen, decide=False)
    other_patient = await make_patient(
        session, network.emergency, birth_family_name="Guillou", birth_given_names="Yann"
    )
    other = await service.create_alert(
        session, network.emergency.principal, settings, alert(other_patient.id)
    )
    other_request = str(other.request_id)
    interventional = await make_actor(session, network.thrombectomy_centre, Role.EXPERT)
    centre_id, centre_account = (
        network.thrombectomy_centre.id,
        interventional.account.id,
    )  # plain values (a 404
    # rolls its savepoint back and expires the ORM objects)
    centre = await token_for(session, interventional)
    strangers = [await token_for(session, a) for a in (network.colleague, network.outsider)]
    opinion = [f"/fhir/{kind}/{story['request_id']}" for kind in ("ServiceRequest", "Task")]

    # before the decision the centre is no party: 404, like the colleague elsewhere and the outsider
    for headers in (centre, *strangers):
        for url in opinion:
            outcome(await client.get(url, headers=headers), 404)

    await service.decide(
        session,
        network.neurologist.principal,
        settings,
        uuid.UUID(story["case_id"]),
        DecisionCreate(
            disposition=Disposition.TRANSFER,
            thrombectomy=True,
            reasons="Occlusion de l'artère cérébrale moyenne gauche",
            receiving_organisation_id=centre_id,
            transport_mode=TransportMode.HELICOPTER,
        ),
    )
    encounter = Encounter.model_validate_json(
        (await client.get(f"/fhir/Encounter/{story['case_id']}", headers=centre)).content
    )
    [based_on] = [ref.reference for ref in encounter.basedOn]
    request = ServiceRequest.model_validate_json(
        (await client.get(f"/fhir/{based_on}", headers=centre)).content
    )
    assert request.id == story["request_id"] and request.subject.reference == f"Patient/{story['patient_id']}"
    task = Task.model_validate_json((await client.get(opinion[1], headers=centre)).content)
    assert task.focus.reference == based_on
    # the same resources as the parties read
    parties = await token_for(session, network.emergency)
    for url in opinion:
        mine = (await client.get(url, headers=centre)).json()
        theirs = (await client.get(url, headers=parties)).json()
        assert mine == theirs, url

    # only that: the request's other resources, the JSON API (no write), another case's opinion stay closed
    for url in (
        f"/fhir/QuestionnaireResponse/{story['request_id']}",
        f"/fhir/ServiceRequest/{other_request}",
        f"/fhir/Task/{other_request}",
        f"/fhir/ServiceRequest/{uuid.uuid4()}",
        "/fhir/Task/pas-un-uuid",
    ):
        outcome(await client.get(url, headers=centre), 404)
    assert (await client.get(f"/api/requests/{story['request_id']}", headers=centre)).status_code == 404
    posted = await client.post(
        f"/api/requests/{story['request_id']}/messages",
        json={"kind": "information", "body": "Salle prête"},
        headers=centre,
    )
    assert posted.status_code == 404
    # the colleague elsewhere and the outsider still get nothing
    for headers in strangers:
        for url in opinion:
            response = await client.get(url, headers=headers)
            outcome(response, 404)
            assert "LE BIHAN" not in response.text.upper()

    # each read is audited with the patient, naming the resource and the case it was reached through
    audit = AuditRepository(session)
    events = (await audit.list_for_patient(uuid.UUID(story["patient_id"]), PageRequest(0, 200))).items
    reads = [
        e
        for e in events
        if e.account_id == centre_account and e.object_type == "TeleRequest" and e.action == "read"
    ]
    assert sorted(json.loads(e.details)["resource"] for e in reads) == sorted(
        [based_on, based_on, opinion[1].removeprefix("/fhir/"), opinion[1].removeprefix("/fhir/")]
    )
    assert all(e.channel == "fhir" for e in reads)
    assert {json.loads(e.details)["via"] for e in reads} == {f"StrokeCase/{story['case_id']}"}


# --- the Encounter search: both kinds ---------------------------------------------------------------------------


async def test_the_encounters_of_a_patient_are_the_case_and_its_call(
    session, settings, client, network, patient, frozen
):
    story = await _story(session, settings, network, patient, frozen)
    frozen.advance(minutes=2)
    room = await service.open_video(session, network.neurologist.principal, uuid.UUID(story["case_id"]))
    room_id, case_id = str(room.id), story["case_id"]
    patient_ref = f"Patient/{story['patient_id']}"
    interventional = await make_actor(session, network.thrombectomy_centre, Role.EXPERT)
    emergency = network.emergency.account.id  # plain values: a 404 expires the ORM objects
    centre_account = interventional.account.id
    strangers = {network.colleague.account.id, network.outsider.account.id}
    tokens = {
        name: await token_for(session, actor)
        for name, actor in (
            ("emergency", network.emergency),
            ("neurologist", network.neurologist),
            ("centre", interventional),
            ("colleague", network.colleague),
            ("outsider", network.outsider),
        )
    }

    for headers in (tokens["emergency"], tokens["neurologist"]):
        for params, expected in (
            ({"patient": patient_ref}, [room_id, case_id]),  # latest first: the call opened after the arrival
            ({"subject": story["patient_id"]}, [room_id, case_id]),
            ({"based-on": f"ServiceRequest/{story['request_id']}"}, [room_id, case_id]),
            ({"patient": patient_ref, "class": "VR"}, [room_id]),
            (
                {"patient": patient_ref, "class": "http://terminology.hl7.org/CodeSystem/v3-ActCode|EMER"},
                [case_id],
            ),
            ({"patient": patient_ref, "class": "http://snomed.info/sct|VR"}, []),
            ({"patient": patient_ref, "class": "AMB"}, []),
            ({"patient": patient_ref, "status": "planned"}, [room_id]),  # the call not started yet
            ({"patient": patient_ref, "status": "in-progress"}, [case_id]),
            ({"patient": patient_ref, "date": "2026-12-02"}, [case_id]),  # a call not started has no period
            ({"patient": f"Patient/{uuid.uuid4()}"}, []),
            ({"based-on": f"ServiceRequest/{uuid.uuid4()}"}, []),
        ):
            found = bundle(await client.get("/fhir/Encounter", params=params, headers=headers))
            assert [e.resource.id for e in found.entry or []] == expected, params
            assert found.total == len(expected), params
        [call, case] = _entries(
            await client.get("/fhir/Encounter", params={"patient": patient_ref}, headers=headers)
        )
        assert (call.class_fhir.code, case.class_fhir.code) == ("VR", "EMER")
        assert call.partOf.reference == f"Encounter/{case_id}"
        assert [r.reference for r in call.basedOn] == [r.reference for r in case.basedOn]

        # paged: the total counts both kinds, the next link gives the rest
        first = bundle(
            await client.get(
                "/fhir/Encounter", params={"patient": patient_ref, "_count": "1"}, headers=headers
            )
        )
        assert first.total == 2 and [e.resource.id for e in first.entry] == [room_id]
        [next_url] = [link.url for link in first.link if link.relation == "next"]
        second = bundle(await client.get(next_url, headers=headers))
        assert second.total == 2 and [e.resource.id for e in second.entry] == [case_id]
        assert not any(link.relation == "next" for link in second.link)
        counted = bundle(
            await client.get(
                "/fhir/Encounter", params={"patient": patient_ref, "_count": "0"}, headers=headers
            )
        )
        assert counted.total == 2 and not counted.entry

    # the receiving centre finds the case but not its call (the call's rule: the act's two hospitals)
    centre = tokens["centre"]
    for params in ({"patient": patient_ref}, {"based-on": f"ServiceRequest/{story['request_id']}"}):
        found = bundle(await client.get("/fhir/Encounter", params=params, headers=centre))
        assert [e.resource.id for e in found.entry] == [case_id] and found.total == 1, params
    outcome(await client.get(f"/fhir/Encounter/{room_id}", headers=centre), 404)
    # the colleague elsewhere and the outsider find nothing, and learn no total
    for headers in (tokens["colleague"], tokens["outsider"]):
        for params in (
            {"patient": patient_ref},
            {"based-on": f"ServiceRequest/{story['request_id']}"},
            {"patient": patient_ref, "class": "VR"},
        ):
            found = bundle(await client.get("/fhir/Encounter", params=params, headers=headers))
            assert found.total == 0 and not found.entry, params

    # what a search shows is audited with the patient: the case and the call, for the centre the case only
    audit = AuditRepository(session)
    events = (await audit.list_for_patient(uuid.UUID(story["patient_id"]), PageRequest(0, 500))).items
    searched = {
        (e.account_id, e.object_type, e.object_id)
        for e in events
        if e.action == "search"
        and e.channel == "fhir"
        and json.loads(e.details).get("resource") == "Encounter"
    }
    assert {(emergency, "StrokeCase", case_id), (emergency, "VideoRoom", room_id)} <= searched
    assert {(kind, object_id) for account, kind, object_id in searched if account == centre_account} == {
        ("StrokeCase", case_id)
    }
    assert not [e for e in events if e.account_id in strangers]


async def test_fhirpy_pages_through_both_kinds(fhir_url, session, settings, network, patient, frozen):
    story = await _story(session, settings, network, patient, frozen)
    room = await service.open_video(session, network.emergency.principal, uuid.UUID(story["case_id"]))
    room_id = str(room.id)
    headers = await token_for(session, network.emergency)
    centre_headers = await token_for(
        session, await make_actor(session, network.thrombectomy_centre, Role.EXPERT)
    )
    client = AsyncFHIRClient(fhir_url, authorization=headers["Authorization"])
    search = client.resources("Encounter").search(patient=f"Patient/{story['patient_id']}")
    assert await search.count() == 2
    encounters = await search.limit(1).fetch_all()  # two pages, following the Bundle's next link
    assert [(e.id, e["class"]["code"]) for e in encounters] == [(room_id, "VR"), (story["case_id"], "EMER")]
    request = await client.reference("ServiceRequest", story["request_id"]).to_resource()
    assert request.id == story["request_id"]
    centre = AsyncFHIRClient(fhir_url, authorization=centre_headers["Authorization"])
    task = await centre.reference("Task", story["request_id"]).to_resource()
    assert task["focus"]["reference"] == f"ServiceRequest/{story['request_id']}"
    assert [
        e.id for e in await centre.resources("Encounter").search(patient=story["patient_id"]).fetch()
    ] == [story["case_id"]]


# --- bad input -----------------------------------------------------------------------------------------------


async def test_bad_input_gets_an_operation_outcome(session, settings, client, network, patient, frozen):
    story = await _story(session, settings, network, patient, frozen, decide=False)
    headers = await token_for(session, network.emergency)
    patient_ref = f"Patient/{story['patient_id']}"
    for url, params, status in (
        ("/fhir/Encounter/pas-un-uuid", {}, 404),
        (f"/fhir/Encounter/{uuid.uuid4()}", {}, 404),
        ("/fhir/Observation/pas-un-id", {}, 404),
        (f"/fhir/Observation/{uuid.uuid4()}", {}, 404),
        (f"/fhir/Observation/avc-{story['case_hex']}-pression", {}, 404),
        (f"/fhir/Observation/avc-{story['case_hex'].upper()}-bp", {}, 404),
        (f"/fhir/Observation/avc-{uuid.uuid4().hex}-bp", {}, 404),
        (f"/fhir/Observation/{'x' * 65}", {}, 404),
        ("/fhir/Encounter", {}, 400),
        ("/fhir/Encounter", {"patient": "Practitioner/" + story["emergency"]}, 400),
        ("/fhir/Encounter", {"patient": "n'importe quoi"}, 400),
        ("/fhir/Encounter", {"patient": patient_ref, "status": "perhaps"}, 400),
        ("/fhir/Encounter", {"patient": patient_ref, "date": "2026-13-45"}, 400),
        ("/fhir/Encounter", {"patient": patient_ref, "class": f"{LOINC}|"}, 400),
        ("/fhir/Encounter", {"part-of": "Encounter/12"}, 400),
        ("/fhir/Encounter", {"patient": patient_ref, "subject": f"Patient/{uuid.uuid4()}"}, 400),
        ("/fhir/Observation", {}, 400),
        ("/fhir/Observation", {"code": "72089-6"}, 400),  # no patient nor encounter
        ("/fhir/Observation", {"encounter": "Encounter/pas-un-uuid"}, 400),
        ("/fhir/Observation", {"patient": patient_ref, "code": f"{LOINC}|"}, 400),
        ("/fhir/Observation", {"patient": patient_ref, "code": "72089-6,8480-6"}, 400),
        ("/fhir/Observation", {"patient": patient_ref, "code:text": "NIHSS"}, 400),
        ("/fhir/Observation", {"patient": patient_ref, "date": "hier"}, 400),
        ("/fhir/Observation", {"patient": patient_ref, "_count": "-1"}, 400),
    ):
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == status, (url, params, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
    # an unknown parameter is ignored, or refused with Prefer: handling=strict
    lax = bundle(
        await client.get(
            "/fhir/Observation", params={"patient": patient_ref, "valeur": "14"}, headers=headers
        )
    )
    assert lax.total == 7
    strict = {**headers, "Prefer": "handling=strict"}
    outcome(
        await client.get(
            "/fhir/Observation", params={"patient": patient_ref, "valeur": "14"}, headers=strict
        ),
        400,
    )
    # without a token: 401
    outcome(await client.get(f"/fhir/Encounter/{story['case_id']}"), 401)


async def test_the_capability_statement_lists_encounter_and_observation(client):
    statement = (await client.get("/fhir/metadata")).json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {p["name"] for p in resources["Observation"]["searchParam"]} == {
        "patient",
        "subject",
        "encounter",
        "code",
        "category",
        "date",
    }
    assert {p["name"] for p in resources["Encounter"]["searchParam"]} == {
        "patient",
        "subject",
        "based-on",
        "appointment",
        "part-of",
        "status",
        "class",
        "date",
    }
