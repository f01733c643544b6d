"""A device gateway posts readings over FHIR: one Observation with fhirpy (a real FHIR client, over a real HTTP
port), then a batch Bundle with good and bad entries, each answered on its own; the blood-pressure panel is split
into its two pressures; the same reading sent twice is stored once; strangers' readings are refused."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from telesante.events.service import use_event_bus
from telesante.monitoring import service
from telesante.monitoring.models import ReadingSource
from tests.factories import make_patient, token_for
from tests.fhir.test_fhirpy import fhir_url  # noqa: F401 - the fixture is used below
from tests.monitoring.conftest import enrol

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def observation(patient_id, code, value=None, unit=None, at=None, **extra) -> dict:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if at is not None:
        resource["effectiveDateTime"] = at.isoformat()
    if value is not None:
        resource["valueQuantity"] = {"value": value, "system": UCUM, **({"code": unit} if unit else {})}
    resource.update(extra)
    return resource


def entry(resource) -> dict:
    return {"resource": resource, "request": {"method": "POST", "url": "Observation"}}


async def enrol_others(session, network, count: int) -> list:
    """``count`` more patients registered and enrolled by the cardiologist (no device)."""
    from telesante.patients import service as patients_service
    from tests.factories import patient_data

    others = []
    for n in range(count):
        other, _ = await patients_service.register_patient(
            session,
            network.cardiologist.principal,
            patient_data(birth_family_name=f"Leroy{'e' * n}", birth_given_names="Jeanne"),
        )
        await enrol(session, network, other, devices=[])
        others.append(other)
    return others


async def post_bulk(session, network, readings: list[dict], bus) -> dict:
    """A gateway's batch of these readings through ``fhir.monitoring.batch``, then the request's own commit (the route
    commits after it), its events recorded by ``bus``."""
    from telesante.db import commit_part
    from telesante.fhir import monitoring as fhir_monitoring

    with use_event_bus(bus):
        answer = await fhir_monitoring.batch(
            session,
            network.gateway.principal,
            await fhir_monitoring.prepare_batch(
                {"resourceType": "Bundle", "type": "batch", "entry": [entry(r) for r in readings]}
            ),
        )
        await commit_part(session)
    return answer


async def test_fhirpy_posts_a_reading_twice_and_it_is_stored_once(
    fhir_url,  # noqa: F811 - the fixture imported above
    session,
    network,
    patient,
    frozen,
):
    enrolment = await enrol(session, network, patient)
    gateway = AsyncFHIRClient(
        fhir_url, authorization=(await token_for(session, network.gateway))["Authorization"]
    )
    sent = observation(
        patient.id,
        "29463-7",
        176.0,
        "[lb_av]",
        frozen.now - timedelta(minutes=3),
        identifier=[{"system": "urn:vendor:scale", "value": "reading-42"}],
        device={"identifier": {"value": "SCALE-0001"}},
    )
    created = gateway.resource("Observation", **sent)
    await created.save()
    assert created.id.startswith("tls-")
    assert (
        created["valueQuantity"]["value"] == pytest.approx(79.8) and created["valueQuantity"]["code"] == "kg"
    )
    again = gateway.resource("Observation", **sent)
    await again.save()
    assert again.id == created.id  # already stored: answered with the stored reading
    readings = await service.readings_of(session, network.doctor.principal, enrolment.id)
    assert len(readings) == 1
    read = await gateway.reference("Observation", created.id).to_resource()
    assert read["subject"]["reference"] == f"Patient/{patient.id}"
    # a stranger's gateway cannot post for this patient, nor read the reading
    stranger = AsyncFHIRClient(
        fhir_url, authorization=(await token_for(session, network.colleague))["Authorization"]
    )
    with pytest.raises(OperationOutcome) as refused:
        await stranger.resource("Observation", **{**sent, "identifier": []}).save()
    assert "non inclus" in str(refused.value)
    with pytest.raises(Exception):  # noqa: B017 - fhirpy raises ResourceNotFound (404)
        await stranger.reference("Observation", created.id).to_resource()


async def test_a_batch_answers_each_entry(fhir_url, session, network, patient, frozen):  # noqa: F811
    enrolment = await enrol(session, network, patient)
    other = await make_patient(session, network.cardiologist, birth_family_name="Lemaire")
    now = frozen.now
    panel = observation(
        patient.id,
        "85354-9",
        at=now - timedelta(minutes=10),
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 132, "system": UCUM, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 81, "system": UCUM, "code": "mm[Hg]"},
            },
        ],
    )
    half_panel = observation(patient.id, "85354-9", at=now, component=panel["component"][:1])
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            entry(observation(patient.id, "29463-7", 81.5, "kg", now - timedelta(hours=1))),  # 0 good
            entry(panel),  # 1 good: two readings
            entry(observation(patient.id, "1234-5", 3, "kg", now)),  # 2 unknown code
            entry(observation(patient.id, "8867-4", 70, None, now)),  # 3 missing unit
            entry(observation(patient.id, "29463-7", 12, "[stone_av]", now)),  # 4 not convertible
            entry(observation(patient.id, "29463-7", 0, "kg", now)),  # 5 impossible
            entry(observation(patient.id, "59408-5", 140, "%", now)),  # 6 impossible
            entry(observation(patient.id, "29463-7", 80, "kg", now + timedelta(days=1))),  # 7 future
            entry(observation(patient.id, "29463-7", 80, "kg", now - timedelta(days=3650))),  # 8 years ago
            entry(observation(other.id, "29463-7", 80, "kg", now)),  # 9 not enrolled
            entry(
                observation(patient.id, "29463-7", 80, "kg", now, device={"identifier": {"value": "X-1"}})
            ),  # 10
            entry(half_panel),  # 11 panel without its diastolic
            entry(observation(patient.id, "29463-7", 80, "kg")),  # 12 no date
            entry({"resourceType": "Observation", "status": "final", "code": "poids"}),  # 13 not FHIR
            {"resource": {"resourceType": "Patient"}, "request": {"method": "PUT", "url": "Patient/1"}},  # 14
        ],
    }
    gateway = AsyncFHIRClient(
        fhir_url, authorization=(await token_for(session, network.gateway))["Authorization"]
    )
    answer = await gateway.execute("", method="post", data=bundle)
    assert answer["type"] == "batch-response" and len(answer["entry"]) == 15
    Bundle.model_validate(answer)  # the answer, built as plain JSON, is a valid FHIR Bundle
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses[:2] == ["201 Created", "201 Created"]
    assert statuses[14] == "400 Bad Request"
    assert set(statuses[2:14]) == {"422 Unprocessable Entity"}
    issues = {i: e["response"]["outcome"]["issue"][0] for i, e in enumerate(answer["entry"]) if i >= 2}
    expected = {
        2: ("code", "inconnu"),
        3: ("valueQuantity.code", "Unité absente"),
        4: ("valueQuantity.code", "non convertible"),
        5: ("valueQuantity.value", "0 kg"),
        6: ("valueQuantity.value", "140 %"),
        7: ("effectiveDateTime", "futur"),
        8: ("effectiveDateTime", "365 jours"),
        9: ("subject", "non inclus"),
        10: ("device", "X-1"),
        11: ("code", "8462-4"),
        12: ("effectiveDateTime", "absente"),
    }
    for index, (element, words) in expected.items():
        issue = issues[index]
        assert issue["expression"] == [f"Bundle.entry[{index}].resource.{element}"], (index, issue)
        assert (
            issue["diagnostics"].startswith(f"Bundle.entry[{index}] : ") and words in issue["diagnostics"]
        ), issue
    assert "code" in issues[13]["diagnostics"]
    readings = await service.readings_of(session, network.nurse.principal, enrolment.id)
    assert sorted((r.measure, r.value) for r in readings) == [
        ("diastolic", 81.0),
        ("systolic", 132.0),
        ("weight", 81.5),
    ]
    # the whole batch again: every good entry is already there
    again = await gateway.execute("", method="post", data={**bundle, "entry": bundle["entry"][:2]})
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK", "200 OK"]
    assert [e["response"]["location"] for e in again["entry"]] == [
        e["response"]["location"] for e in answer["entry"][:2]
    ]


async def test_bad_bodies_get_an_operation_outcome_never_a_500(client, session, network, patient):
    patient_id = patient.id  # the requests below roll back, which expires the objects of the test's session
    headers = {**(await token_for(session, network.gateway)), "Content-Type": "application/fhir+json"}
    for body in (
        b"{",
        b"[]",
        b'{"resourceType": "Patient"}',
        b'{"resourceType": "Bundle", "type": "batch", "entry": 3}',
    ):
        response = await client.post(
            "/fhir/Observation" if b"Patient" in body else "/fhir", content=body, headers=headers
        )
        assert response.status_code in (400, 422), (body, response.status_code)
        assert response.json()["resourceType"] == "OperationOutcome"
    response = await client.post(
        "/fhir/Observation", json=observation(patient_id, "29463-7", 80, "kg"), headers=headers
    )
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Observation.effectiveDateTime"]


def _variants(patient_id) -> list[dict]:
    """A device's Observation and variations of each element: valid forms, invalid forms, unusual elements."""
    base = {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"system": "urn:vendor:scale", "value": "r-1"}],
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}], "text": "Poids"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "device": {"identifier": {"value": "SCALE-0001"}},
        "effectiveDateTime": "2026-12-01T07:10:00+01:00",
        "valueQuantity": {"value": 80.4, "unit": "kg", "system": UCUM, "code": "kg"},
    }
    panel = {
        **{k: v for k, v in base.items() if k != "valueQuantity"},
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 130, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 80, "code": "mm[Hg]"},
            },
        ],
    }
    changes = [
        {},
        {"status": "amended"},
        {"status": "entered-in-error"},
        {"status": "finale"},
        {"status": 3},
        {"effectiveDateTime": "2026-12-01T06:10:00Z"},
        {"effectiveDateTime": "2026-12-01T06:10:00.123Z"},
        {"effectiveDateTime": "2026-12-01"},
        {"effectiveDateTime": "2026-12-01T06:10"},
        {"effectiveDateTime": "2026-13-01T06:10:00Z"},
        {"effectiveDateTime": "hier"},
        {"valueQuantity": {"value": "80.4", "code": "kg"}},
        {"valueQuantity": {"value": True, "code": "kg"}},
        {"valueQuantity": {"value": 80, "code": "k g  x"}},
        {"valueQuantity": {"value": 80, "code": ""}},
        {"valueQuantity": {"value": 80, "system": "not a uri"}},
        {"valueQuantity": {"value": 80, "unit": " kg"}},
        {"valueQuantity": {"value": 80, "comparator": "<"}},
        {"valueQuantity": {}},
        {"code": {"coding": []}},
        {"code": {"coding": [{"system": LOINC, "code": "29463-7", "userSelected": True}]}},
        {"code": {"text": ""}},
        {"subject": {"reference": "Patient/ 1"}},
        {"subject": {"display": "M. Dufour"}},
        {"subject": {"reference": f"Patient/{patient_id}", "display": "M. Dufour"}},
        {"device": {"reference": "Device/abc"}},
        {"device": {"identifier": {"value": ""}}},
        {"device": {}},
        {"identifier": []},
        {"identifier": [{"value": "r-2", "use": "official"}]},
        {"identifier": [{"system": "urn:x"}]},
        {"category": []},
        {"note": [{"text": "après le petit déjeuner"}]},
        {"meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/bodyweight"]}},
        {"effectivePeriod": {"start": "2026-12-01T06:10:00Z"}},
    ]
    variants = []
    for change in changes:
        variant = {**base, **change}
        variants.append({k: v for k, v in variant.items() if v is not None})
    variants.append(panel)
    variants.append({**panel, "component": panel["component"][:1]})
    variants.append({**panel, "component": [{"code": panel["component"][0]["code"]}]})
    return variants


def test_plain_reading_agrees_with_fhir_resources(monkeypatch):
    """Whatever the direct reading accepts, fhir.resources accepts too, and both read the same readings; what it
    does not accept goes to fhir.resources (so nothing is refused that the library would take)."""
    import uuid as uuid_module

    from fhir.resources.R4B.observation import Observation as FhirObservation
    from pydantic import ValidationError

    from telesante.fhir import monitoring as fhir_monitoring

    patient_id = uuid_module.uuid4()
    taken = 0
    for index, variant in enumerate(_variants(patient_id)):
        plain = fhir_monitoring.plain_observation(variant)
        fast = fhir_monitoring.parse_observation(variant, index, 0)
        with monkeypatch.context() as patched:
            patched.setattr(fhir_monitoring, "plain_observation", lambda data: None)
            slow = fhir_monitoring.parse_observation(variant, index, 0)
        if plain is None:
            continue
        taken += 1
        try:
            FhirObservation.model_validate(variant)
        except ValidationError as exc:  # pragma: no cover - the assertion below names the variant
            raise AssertionError(f"accepted directly but invalid FHIR: {variant} {exc}") from None
        assert fast.problem == slow.problem, variant
        assert [vars(item) for item in fast.items] == [vars(item) for item in slow.items], variant
    assert taken == 8  # the common shapes (and only they) take the direct path


async def test_a_gateway_sends_ventilation_hours_and_questionnaire_answers_with_the_local_codes(
    client, session, network, patient, frozen
):
    enrolled = await enrol(session, network, patient)
    patient_id, enrolment_id = enrolled.patient_id, enrolled.id
    headers = {**(await token_for(session, network.gateway)), "Content-Type": "application/fhir+json"}
    local = "urn:telesante:telesurveillance"

    def coded(code, **value):
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": local, "code": code}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": frozen.now.isoformat(),
            **value,
        }

    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            entry(coded("ventilation-heures", valueQuantity={"value": 390, "system": UCUM, "code": "min"})),
            entry(coded("symptome-dyspnee", valueBoolean=True)),
            entry(coded("symptome-dyspnee", valueQuantity={"value": 1, "system": UCUM, "code": "1"})),
            entry(coded("symptome-toux", valueBoolean=True)),
        ],
    }
    answer = (await client.post("/fhir", json=bundle, headers=headers)).json()
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["201 Created", "201 Created", "422 Unprocessable Entity", "422 Unprocessable Entity"]
    problems = [e["response"]["outcome"]["issue"][0]["diagnostics"] for e in answer["entry"][2:]]
    assert "valueBoolean attendu" in problems[0] and "« symptome-toux » inconnu" in problems[1]
    locations = [e["response"]["location"] for e in answer["entry"][:2]]
    hours = (await client.get(f"/fhir/{locations[0]}", headers=headers)).json()
    assert hours["valueQuantity"]["value"] == 6.5 and hours["code"]["coding"][0]["system"] == local
    symptom = (await client.get(f"/fhir/{locations[1]}", headers=headers)).json()
    assert symptom["valueBoolean"] is True and symptom["category"][0]["coding"][0]["code"] == "survey"
    view = await service.get_enrolment(session, network.nurse.principal, enrolment_id)
    assert view.enrolment.colour == "orange"  # heart failure: more breathless than usual
    assert [a.message for a in view.alerts] == ["Symptôme signalé : essoufflement inhabituel."]


async def test_fhirpy_searches_a_patients_readings_by_code_and_date(
    fhir_url,  # noqa: F811 - the fixture imported above
    session,
    network,
    patient,
    frozen,
):
    await enrol(session, network, patient)
    items = [
        service.ReadingItem(n, patient.id, "29463-7", kilograms, "kg", frozen.now - timedelta(days=3 - n))
        for n, kilograms in enumerate((78.4, 79.3, 80.6))
    ] + [service.ReadingItem(3, patient.id, "8480-6", 118, "mm[Hg]", frozen.now - timedelta(days=2))]
    await service.record_readings(session, network.gateway.principal, items, ReadingSource.DEVICE)
    team = AsyncFHIRClient(
        fhir_url, authorization=(await token_for(session, network.doctor))["Authorization"]
    )
    everything = await team.resources("Observation").search(patient=str(patient.id)).fetch_all()
    assert len(everything) == 4
    weights = (
        await team.resources("Observation")
        .search(patient=str(patient.id), code=f"{LOINC}|29463-7")
        .sort("-date")
        .fetch_all()
    )
    assert [w["valueQuantity"]["value"] for w in weights] == [80.6, 79.3, 78.4]  # newest first
    recent = (
        await team.resources("Observation")
        .search(patient=str(patient.id), date__ge=(frozen.now - timedelta(days=1, hours=12)).isoformat())
        .fetch_all()
    )
    assert [r["valueQuantity"]["value"] for r in recent] == [80.6]
    vital = (
        await team.resources("Observation").search(patient=str(patient.id), category="vital-signs").count()
    )
    assert vital == 4
    # the colleague elsewhere finds nothing: the search does not even say that the patient has readings
    stranger = AsyncFHIRClient(
        fhir_url, authorization=(await token_for(session, network.colleague))["Authorization"]
    )
    assert await stranger.resources("Observation").search(patient=str(patient.id)).count() == 0


async def test_a_device_named_by_its_fhir_id_is_the_patients_device(
    client, session, network, patient, frozen
):
    enrolment = await enrol(session, network, patient)
    view = await service.get_enrolment(session, network.nurse.principal, enrolment.id)
    device_id, patient_id = view.devices[0].id, patient.id
    headers = {**(await token_for(session, network.gateway)), "Content-Type": "application/fhir+json"}
    at = frozen.now - timedelta(minutes=1)
    ok = await client.post(
        "/fhir/Observation",
        json=observation(patient_id, "29463-7", 81, "kg", at, device={"reference": f"Device/{device_id}"}),
        headers=headers,
    )
    assert ok.status_code == 201, ok.text
    unknown = await client.post(
        "/fhir/Observation",
        json=observation(patient_id, "29463-7", 81, "kg", at, device={"reference": f"Device/{uuid.uuid4()}"}),
        headers=headers,
    )
    assert unknown.status_code == 422 and "non attribué à ce patient" in unknown.text


async def test_a_batch_is_read_before_the_transaction_and_authentication_still_answers_first(
    client, session, network, patient, frozen, monkeypatch
):
    """A gateway's batch is parsed before the request's first statement (the token's look-up), so that on SQLite the
    write lock is never held for it; a caller without a valid token still gets 401, whatever its body."""
    from telesante.auth import service as auth_service
    from telesante.fhir import monitoring as fhir_monitoring

    await enrol(session, network, patient)
    patient_id = patient.id
    headers = {**(await token_for(session, network.gateway)), "Content-Type": "application/fhir+json"}
    calls: list[str] = []
    prepare, look_up = fhir_monitoring.prepare_batch, auth_service.principal_for_api_token

    async def prepare_spy(data):
        calls.append("prepare")
        return await prepare(data)

    async def look_up_spy(session_, token):
        calls.append("token")
        return await look_up(session_, token)

    monkeypatch.setattr(fhir_monitoring, "prepare_batch", prepare_spy)
    monkeypatch.setattr(auth_service, "principal_for_api_token", look_up_spy)
    taken = frozen.now - timedelta(hours=1)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [entry(observation(patient_id, "29463-7", 81.5, "kg", taken))],
    }
    response = await client.post("/fhir", json=bundle, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["response"]["status"] == "201 Created"
    assert calls == ["prepare", "token"]

    for bad_headers, body in (
        ({"Content-Type": "application/fhir+json"}, b"{"),
        ({"Authorization": "Bearer tsa_" + "x" * 40, "Content-Type": "application/fhir+json"}, b"{"),
        (
            {"Authorization": "Bearer tsa_" + "x" * 40, "Content-Type": "application/fhir+json"},
            b'{"entry": 1}',
        ),
    ):
        response = await client.post("/fhir", content=body, headers=bad_headers)
        # without a token, the cross-site check refuses it (403); with an unknown one, 401; never the body's 400
        expected = 401 if "Authorization" in bad_headers else 403
        assert response.status_code == expected, (bad_headers, body, response.status_code)


async def test_a_batch_stored_in_parts_answers_as_one_and_announces_each_part(
    session, network, patient, frozen, monkeypatch
):
    """On SQLite a batch is stored in parts, one transaction each (the write lock passes between parts); with parts of
    two entries here, on both engines: the same answers as in one transaction (a repeat in a later part is the
    duplicate of the first), and the alert raised by a part is announced when that part commits."""
    from telesante.fhir import monitoring as fhir_monitoring
    from tests.stroke.test_service import RecordingBus

    expected_parts = 7 if session.bind.dialect.name == "sqlite" else None
    assert fhir_monitoring.commit_every(session, 7) == expected_parts
    monkeypatch.setattr(fhir_monitoring, "commit_every", lambda _session, _part: 2)
    enrolment = await enrol(session, network, patient)
    now = frozen.now
    first = observation(
        patient.id,
        "29463-7",
        78.0,
        "kg",
        now - timedelta(hours=50),
        identifier=[{"system": "urn:scale", "value": "r-1"}],
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            entry(first),  # part 1
            entry(observation(patient.id, "29463-7", 78.2, "kg", now - timedelta(hours=26))),
            entry(
                observation(patient.id, "29463-7", 81.4, "kg", now - timedelta(hours=1))
            ),  # part 2: +3.4 kg
            entry(first),  # the first reading again
            entry(observation(patient.id, "59408-5", 140, "%", now)),  # part 3: impossible
        ],
    }
    bus = RecordingBus()
    with use_event_bus(bus):
        answer = await fhir_monitoring.batch(
            session, network.gateway.principal, await fhir_monitoring.prepare_batch(bundle)
        )
    Bundle.model_validate(answer)
    responses = [e["response"] for e in answer["entry"]]
    assert [r["status"] for r in responses] == [
        "201 Created",
        "201 Created",
        "201 Created",
        "200 OK",
        "422 Unprocessable Entity",
    ]
    assert responses[3]["location"] == responses[0]["location"]
    assert responses[4]["outcome"]["issue"][0]["expression"] == [
        "Bundle.entry[4].resource.valueQuantity.value"
    ]
    readings = await service.readings_of(session, network.nurse.principal, enrolment.id)
    assert sorted(r.value for r in readings) == [78.0, 78.2, 81.4]
    alerts = [e for e in bus.events if e.type == "monitoring.alert"]  # published by part 2's commit
    assert alerts and alerts[0].data["severity"] == "red"


async def test_a_bulk_batch_waits_for_others_only_where_it_holds_nothing(
    session, network, patient, frozen, monkeypatch
):
    """kit.cooperative: on SQLite a part's transaction holds the single write lock, so a bulk batch may not wait
    inside it, only between two parts; on PostgreSQL it may wait at its pauses within the whole batch."""
    from telesante.fhir import monitoring as fhir_monitoring
    from telesante.kit import cooperative

    sqlite = session.bind.dialect.name == "sqlite"
    await enrol(session, network, patient)
    seen: list[object] = []
    real_ingest, real_give_way = fhir_monitoring._ingest, cooperative.give_way

    async def ingest(*args, **kwargs):
        seen.append(("ingest", cooperative._current.get().may_wait))
        return await real_ingest(*args, **kwargs)

    async def give_way():
        seen.append(("between parts", cooperative._current.get().may_wait))
        await real_give_way()

    monkeypatch.setattr(fhir_monitoring, "_ingest", ingest)
    monkeypatch.setattr(cooperative, "give_way", give_way)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            entry(
                observation(patient.id, "29463-7", 78.0 + n / 10, "kg", frozen.now - timedelta(hours=n + 1))
            )
            for n in range(3)
        ],
    }
    with cooperative.request():
        cooperative.bulk()
        answer = await fhir_monitoring.batch(
            session, network.gateway.principal, await fhir_monitoring.prepare_batch(bundle), sqlite_part=2
        )
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 3
    if sqlite:
        assert seen == [("ingest", False), ("between parts", True), ("ingest", False)]
    else:
        assert seen == [("ingest", True)]


def test_the_part_sizer_holds_the_write_lock_about_its_budget():
    """fhir.monitoring.PartSizer: a part's entries follow the time an entry has cost, within the configured size."""
    from telesante.fhir.monitoring import PartSizer

    sizer = PartSizer()
    assert sizer.size(200, 0.05) == 200  # nothing learned yet: the configured size
    sizer.learn(10, 1.0)  # a small part teaches nothing: its fixed statements weigh on it
    assert sizer.seconds_per_entry is None
    sizer.learn(100, 0.1)  # 1 ms an entry
    assert sizer.size(200, 0.05) == 50
    assert sizer.size(30, 0.05) == 30  # never above the configured size
    assert sizer.size(200, 0) == 200  # a budget of 0: parts of the configured size
    sizer.learn(100, 1.0)  # 10 ms an entry: the average moves by the latest part's weight
    assert sizer.seconds_per_entry == pytest.approx(0.001 + PartSizer.WEIGHT * 0.009)
    assert sizer.size(200, 0.05) == PartSizer.MIN_ENTRIES  # never below the smallest part


async def test_a_batch_on_sqlite_is_stored_in_parts_sized_by_the_time_an_entry_costs(
    session, network, patient, frozen, monkeypatch
):
    """On SQLite each part holds the write lock about TELESANTE_SQLITE_PART_MS: with 2 ms an entry and 50 ms, parts
    of at most 25, so 60 entries make three parts, of equal sizes (20 each, rather than 25, 25 and 10); every entry
    is answered as if stored at once. PostgreSQL stores the batch in one transaction."""
    from telesante.fhir import monitoring as fhir_monitoring

    sqlite = session.bind.dialect.name == "sqlite"
    await enrol(session, network, patient)
    sizer = fhir_monitoring.PartSizer()
    sizer.seconds_per_entry = 0.002
    learned: list[int] = []
    monkeypatch.setattr(
        sizer, "learn", lambda entries, seconds: learned.append(entries) if seconds > 0 else None
    )
    monkeypatch.setattr(fhir_monitoring, "PARTS", sizer)
    parts: list[int] = []
    real_ingest = fhir_monitoring._ingest

    async def ingest(session_, principal, parsed, **options):
        parts.append(len(parsed))
        return await real_ingest(session_, principal, parsed, **options)

    monkeypatch.setattr(fhir_monitoring, "_ingest", ingest)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            entry(observation(patient.id, "29463-7", 78.0, "kg", frozen.now - timedelta(hours=n + 1)))
            for n in range(60)
        ],
    }
    answer = await fhir_monitoring.batch(
        session,
        network.gateway.principal,
        await fhir_monitoring.prepare_batch(bundle),
        sqlite_part=200,
        sqlite_part_ms=50,
    )
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 60
    assert parts == ([20, 20, 20] if sqlite else [60])
    assert learned == ([20, 20, 20] if sqlite else [])
    readings = await service.patient_readings(session, network.nurse.principal, patient.id, None, None)
    assert len(readings) == 60


async def test_on_postgresql_a_bulk_batch_commits_its_readings_then_judges_them_in_short_groups(
    session, network, patient, frozen, monkeypatch
):
    """PostgreSQL: a bulk batch (more than ``cooperative.BULK_ENTRIES`` entries) stores and commits its readings,
    then judges its enrolments in groups of ``JUDGE_GROUP``, one transaction each (each holds its enrolments' rows):
    a single reading of one of these patients waits for a group, not for the whole batch. The answers and the alerts
    are those of one transaction. SQLite judges each part as it stores it."""
    from telesante.fhir import monitoring as fhir_monitoring
    from tests.stroke.test_service import RecordingBus

    postgresql = session.bind.dialect.name == "postgresql"
    rising = await enrol(session, network, patient, devices=[])
    others = await enrol_others(session, network, 4)
    steps: list[object] = []
    real_commit, real_judge = fhir_monitoring.commit_part, service.judge

    async def commit_part(session_):
        steps.append("commit")
        await real_commit(session_)

    async def judge(session_, enrolments, pending, **options):
        steps.append(len(enrolments))
        return await real_judge(session_, enrolments, pending, **options)

    monkeypatch.setattr(fhir_monitoring, "commit_part", commit_part)
    monkeypatch.setattr(service, "judge", judge)
    monkeypatch.setattr(fhir_monitoring, "JUDGE_GROUP", 2)
    now = frozen.now
    readings = [observation(patient.id, "29463-7", 78.0, "kg", now - timedelta(hours=50))]
    readings += [observation(patient.id, "29463-7", 80.6, "kg", now - timedelta(hours=1))]  # +2.6 kg: red
    for n in range(54):  # stable weights for the four others: 56 entries, a bulk batch
        who = others[n % 4]
        readings.append(
            observation(who.id, "29463-7", 70.0 + (n % 2) / 10, "kg", now - timedelta(hours=n + 2))
        )
    bus = RecordingBus()
    answer = await post_bulk(
        session, network, readings, bus
    )  # its final commit is not the batch's: not counted
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 56
    # the readings committed first, then five enrolments judged two by two, a commit between two groups, and the last
    # group's before the answer is built (SQLite: its one part's)
    assert steps == (["commit", 2, "commit", 2, "commit", 1, "commit"] if postgresql else ["commit"])
    alerts = [e for e in bus.events if e.type == "monitoring.alert"]
    assert [(e.data["enrolment_id"], e.data["severity"]) for e in alerts] == [(str(rising.id), "red")]
    # the alert refreshes the worklists: no group sends its own "new readings" refresh besides
    assert [e.type for e in bus.events if e.type == "monitoring.updated"] == []
    view = await service.get_enrolment(session, network.nurse.principal, rising.id)
    assert view.enrolment.colour == "red"
    assert [a.rule_code for a in view.alerts] == ["ic_poids_3j"]


async def test_a_bulk_batch_without_alert_refreshes_the_worklists_once(
    session, network, patient, frozen, monkeypatch
):
    """Readings without an alert tell the team's open worklists once per batch ("new readings"), on PostgreSQL
    too, where the batch is judged in groups (here of two enrolments), each committed on its own."""
    from telesante.fhir import monitoring as fhir_monitoring
    from tests.stroke.test_service import RecordingBus

    monkeypatch.setattr(fhir_monitoring, "JUDGE_GROUP", 2)
    await enrol(session, network, patient, devices=[])
    people = [patient, *await enrol_others(session, network, 4)]
    now = frozen.now
    readings = [
        observation(people[n % 5].id, "29463-7", 70.0 + (n % 2) / 10, "kg", now - timedelta(hours=n + 1))
        for n in range(55)
    ]
    bus = RecordingBus()
    answer = await post_bulk(session, network, readings, bus)
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 55
    updates = [e for e in bus.events if e.type == "monitoring.updated"]
    assert [e.data["count"] for e in updates] == [5]
    assert network.nurse.principal.account_id in updates[0].recipients
    assert not [e for e in bus.events if e.type == "monitoring.alert"]
