"""FHIR facade through HTTP: resources, search, paging, scoping (three actors), audit and error format."""

from __future__ import annotations

from datetime import date

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner

from telesante.audit.repository import AuditRepository
from telesante.directory import service as directory_service
from telesante.directory.models import Profession, Role
from telesante.directory.schemas import ProfessionalCreate
from telesante.fhir import mapping
from telesante.kit.pagination import PageRequest
from telesante.patients import service as patient_service
from telesante.patients.models import IdentityEvidence, IdentityStatus
from telesante.patients.schemas import IdentityStatusChangeCreate
from tests import factories
from tests.factories import make_actor, make_organisation, make_patient, token_for

FHIR_JSON = "application/fhir+json"
NIR_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
BIRTH = date(1954, 3, 12)


def bundle(response) -> Bundle:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    parsed = Bundle.model_validate_json(response.content)
    assert parsed.type == "searchset"
    return parsed


def outcome(response, status: int) -> OperationOutcome:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    parsed = OperationOutcome.model_validate_json(response.content)
    assert parsed.issue and parsed.issue[0].diagnostics
    return parsed


def ids(parsed: Bundle) -> list[str]:
    return [entry.resource.id for entry in parsed.entry or []]


def link(parsed: Bundle, relation: str) -> str | None:
    return next((item.url for item in parsed.link or [] if item.relation == relation), None)


@pytest.fixture
async def world(session):
    """Three actors: the treating professional (organisation A), a colleague in organisation B, and an
    outsider without clinical role (administrator of organisation A)."""
    org_a = await make_organisation(session, "Centre hospitalier de Vitré", departement="35")
    org_b = await make_organisation(session, "Clinique des Lilas")
    treating = await make_actor(session, org_a, Role.REQUESTER)
    colleague = await make_actor(session, org_b, Role.EXPERT)
    outsider = await make_actor(session, org_a, Role.ORG_ADMIN)
    return {
        "org_a": org_a,
        "org_b": org_b,
        "treating": treating,
        "colleague": colleague,
        "outsider": outsider,
        "headers": await token_for(session, treating),
        "colleague_headers": await token_for(session, colleague),
        "outsider_headers": await token_for(session, outsider),
    }


@pytest.fixture
async def headers(session) -> dict[str, str]:
    """A clinician's bearer token, for tests that need one actor only."""
    return await token_for(
        session, await make_actor(session, await make_organisation(session), Role.REQUESTER)
    )


async def qualify(session, actor, patient) -> None:
    """provisoire -> récupérée (INSi) -> qualifiée (pièce à haut niveau de confiance)."""
    for status, evidence in (
        (IdentityStatus.RECUPEREE, IdentityEvidence.TELESERVICE_INSI),
        (IdentityStatus.QUALIFIEE, IdentityEvidence.CNI),
    ):
        await patient_service.change_identity_status(
            session,
            actor.principal,
            patient.id,
            IdentityStatusChangeCreate(status=status, evidence=evidence, reason="Contrôle d'identité"),
        )


# --- metadata and authentication -------------------------------------------------------------------------


async def test_metadata_is_public_capability_statement(client):
    response = await client.get("/fhir/metadata")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    statement = CapabilityStatement.model_validate_json(response.content)
    assert (statement.fhirVersion, statement.status, statement.kind) == ("4.0.1", "active", "instance")
    assert statement.format == ["json"]
    rest = statement.rest[0]
    assert rest.mode == "server"
    assert "Bearer" in rest.security.service[0].text
    resources = {r.type: r for r in rest.resource}
    assert set(resources) == {
        "Patient",
        "Practitioner",
        "Organization",
        "ServiceRequest",
        "Task",
        "DiagnosticReport",
        "Questionnaire",
        "HealthcareService",
        "QuestionnaireResponse",
        "Binary",
        "Schedule",
        "Slot",
        "Appointment",
        "Encounter",
        "Observation",
    }
    for name, resource in resources.items():
        expected = {"read", "search-type"} | (
            {"create"} if name in ("ServiceRequest", "Observation") else set()
        )
        if name in ("QuestionnaireResponse", "Binary"):
            expected = {"read"}
        assert {i.code for i in resource.interaction} == expected, name
    assert {p.name for p in resources["Patient"].searchParam} == {
        "identifier",
        "family",
        "given",
        "birthdate",
        "gender",
    }
    assert {p.name for p in resources["Practitioner"].searchParam} == {"identifier", "family", "name"}
    assert {p.name for p in resources["Organization"].searchParam} == {"identifier", "name"}
    assert statement.implementation.url == "https://testserver/fhir"


@pytest.mark.parametrize("path", ["/fhir/Patient", "/fhir/Practitioner", "/fhir/Organization/x"])
async def test_everything_but_metadata_needs_a_bearer_token(client, path):
    issue = outcome(await client.get(path), 401).issue[0]
    assert issue.code == "login"
    outcome(await client.get(path, headers={"Authorization": "Bearer not-a-real-token"}), 401)


# --- Patient --------------------------------------------------------------------------------------------


async def test_patient_read_publishes_ins_only_once_qualified(session, client, world):
    matricule = factories.valid_nir("F", BIRTH)
    patient = await make_patient(
        session,
        world["treating"],
        ins_matricule=matricule,
        ipp="IPP-0042",
        used_family_name="Durand",
        address_line="3 rue de la Paix",
        postal_code="35500",
        city="Vitré",
        phone="02 99 00 00 00",
    )
    url = f"/fhir/Patient/{patient.id}"

    def identity(resource: FhirPatient) -> tuple[str, list[str]]:
        reliability = next(e for e in resource.extension if e.url == mapping.IDENTITY_RELIABILITY_URL)
        status = next(e for e in reliability.extension if e.url == "identityStatus").valueCoding
        assert status.system == "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status"
        return status.code, [i.system for i in resource.identifier or []]

    response = await client.get(url, headers=world["headers"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    resource = FhirPatient.model_validate_json(response.content)
    ipp_system = f"urn:telesante:ipp:{world['org_a'].finess}"
    assert identity(resource) == ("PROV", [ipp_system])
    assert matricule not in response.text

    ipp = resource.identifier[0]
    assert (ipp.value, ipp.use, ipp.type.coding[0].code) == ("IPP-0042", "usual", "PI")
    assert ipp.type.coding[0].system == "http://terminology.hl7.org/CodeSystem/v2-0203"
    assert ipp.assigner.reference == f"Organization/{world['org_a'].id}"
    official, usual = resource.name
    assert (official.use, official.family, official.given) == ("official", "LEFEVRE", ["ELODIE"])
    assert official.extension[0].url == mapping.BIRTH_LIST_GIVEN_NAME_URL
    assert official.extension[0].valueString == "ELODIE MARIE"
    assert (usual.use, usual.family) == ("usual", "DURAND")
    assert (resource.gender, resource.birthDate) == ("female", BIRTH)
    birth_place = next(e for e in resource.extension if e.url == mapping.BIRTH_PLACE_URL).valueAddress
    assert (birth_place.extension[0].valueCoding.code, birth_place.city) == ("35238", "Rennes")
    assert (resource.address[0].city, resource.address[0].postalCode) == ("Vitré", "35500")
    assert resource.telecom[0].value == "02 99 00 00 00"

    await patient_service.change_identity_status(
        session,
        world["treating"].principal,
        patient.id,
        IdentityStatusChangeCreate(
            status=IdentityStatus.RECUPEREE, evidence=IdentityEvidence.TELESERVICE_INSI, reason="Appel INSi"
        ),
    )
    response = await client.get(url, headers=world["headers"])
    assert identity(FhirPatient.model_validate_json(response.content)) == ("RECUP", [ipp_system])
    assert matricule not in response.text

    await patient_service.change_identity_status(
        session,
        world["treating"].principal,
        patient.id,
        IdentityStatusChangeCreate(
            status=IdentityStatus.QUALIFIEE,
            evidence=IdentityEvidence.CNI,
            reason="Carte d'identité contrôlée",
        ),
    )
    resource = FhirPatient.model_validate_json((await client.get(url, headers=world["headers"])).content)
    assert identity(resource) == ("QUAL", [NIR_SYSTEM, ipp_system])
    ins = resource.identifier[0]
    assert (ins.value, ins.use) == (matricule, "official")
    assert (ins.type.coding[0].system, ins.type.coding[0].code) == (mapping.FR_CORE_V2_0203, "INS-NIR")


async def test_patient_search_by_traits(session, client, world):
    lefevre = await make_patient(session, world["treating"])
    other = await make_patient(
        session,
        world["treating"],
        birth_family_name="Martin",
        birth_given_names="Paul",
        sex="M",
        birth_date=date(1980, 1, 2),
    )
    headers = world["headers"]

    for family in ("lefevre", "LEFÈVRE", "Lefe"):
        parsed = bundle(await client.get("/fhir/Patient", params={"family": family}, headers=headers))
        assert (parsed.total, ids(parsed)) == (1, [str(lefevre.id)]), family
    parsed = bundle(await client.get("/fhir/Patient", params={"family": "lefevre"}, headers=headers))
    assert parsed.entry[0].fullUrl == f"https://testserver/fhir/Patient/{lefevre.id}"
    assert parsed.entry[0].search.mode == "match"
    assert link(parsed, "self") == "https://testserver/fhir/Patient?family=lefevre&_count=20&_offset=0"

    parsed = bundle(await client.get("/fhir/Patient", params={"birthdate": "1980-01-02"}, headers=headers))
    assert ids(parsed) == [str(other.id)]
    parsed = bundle(await client.get("/fhir/Patient", params={"birthdate": "eq1954-03-12"}, headers=headers))
    assert ids(parsed) == [str(lefevre.id)]
    parsed = bundle(await client.get("/fhir/Patient", params={"gender": "male"}, headers=headers))
    assert ids(parsed) == [str(other.id)]
    parsed = bundle(await client.get("/fhir/Patient", params={"gender": "other"}, headers=headers))
    assert parsed.total == 0 and not parsed.entry
    parsed = bundle(
        await client.get("/fhir/Patient", params={"given": "marie", "gender": "female"}, headers=headers)
    )
    assert ids(parsed) == [str(lefevre.id)]
    parsed = bundle(await client.get("/fhir/Patient", headers=headers))
    assert parsed.total == 2


async def test_patient_search_by_identifier(session, client, world):
    matricule = factories.valid_nir("F", BIRTH)
    qualified = await make_patient(session, world["treating"], ins_matricule=matricule, ipp="A-1")
    await qualify(session, world["treating"], qualified)
    unqualified_nir = factories.valid_nir("M", date(1980, 1, 2), order=7)
    await make_patient(
        session,
        world["treating"],
        birth_family_name="Martin",
        birth_given_names="Paul",
        sex="M",
        birth_date=date(1980, 1, 2),
        ins_matricule=unqualified_nir,
    )
    headers = world["headers"]
    finess = world["org_a"].finess

    async def found(identifier: str) -> list[str]:
        return ids(
            bundle(await client.get("/fhir/Patient", params={"identifier": identifier}, headers=headers))
        )

    assert await found(f"{NIR_SYSTEM}|{matricule}") == [str(qualified.id)]
    assert await found(matricule) == [str(qualified.id)]
    # The INS of an identity that is not qualified is never used, not even as a search key.
    assert await found(f"{NIR_SYSTEM}|{unqualified_nir}") == []
    assert await found(unqualified_nir) == []
    assert await found(f"urn:oid:1.2.250.1.213.1.4.10|{matricule}") == []  # right value, other authority
    assert await found(f"urn:telesante:ipp:{finess}|A-1") == [str(qualified.id)]
    assert await found("A-1") == [str(qualified.id)]
    assert await found(f"urn:telesante:ipp:{world['org_b'].finess}|A-1") == []
    assert await found("urn:telesante:ipp:999999999|A-1") == []
    assert await found("http://example.org/autre|A-1") == []
    assert await found("|A-1") == []


async def test_patient_search_pages_with_next_and_previous_links(session, client, world):
    created = set()
    for n in range(5):
        patient = await make_patient(
            session,
            world["treating"],
            birth_family_name="Dupont",
            birth_given_names=f"Jean {chr(65 + n)}",
            first_given_name=None,
            birth_date=date(1960, 1, n + 1),
            sex="M",
        )
        created.add(str(patient.id))
    headers = world["headers"]

    first = bundle(
        await client.get("/fhir/Patient", params={"family": "dupont", "_count": "2"}, headers=headers)
    )
    assert (first.total, len(first.entry)) == (5, 2)
    assert link(first, "previous") is None
    next_url = link(first, "next")
    assert next_url == "https://testserver/fhir/Patient?family=dupont&_count=2&_offset=2"

    seen = ids(first)
    second = None
    while next_url:
        page = bundle(await client.get(next_url, headers=headers))
        second = second or page
        seen += ids(page)
        next_url = link(page, "next")
    assert len(seen) == 5 and set(seen) == created
    assert link(second, "previous") == "https://testserver/fhir/Patient?family=dupont&_count=2&_offset=0"

    only_total = bundle(
        await client.get("/fhir/Patient", params={"family": "dupont", "_count": "0"}, headers=headers)
    )
    assert (only_total.total, only_total.entry, link(only_total, "next")) == (5, None, None)
    capped = bundle(await client.get("/fhir/Patient", params={"_count": "5000"}, headers=headers))
    assert "_count=100" in link(capped, "self")


async def test_patient_outside_scope_is_not_found(session, client, world):
    """Three actors: only the treating professional sees the patient; the others get 404 / empty searches."""
    patient = await make_patient(session, world["treating"])
    url = f"/fhir/Patient/{patient.id}"
    assert (await client.get(url, headers=world["headers"])).status_code == 200
    for headers in (world["colleague_headers"], world["outsider_headers"]):
        issue = outcome(await client.get(url, headers=headers), 404).issue[0]
        assert issue.code == "not-found"
        parsed = bundle(await client.get("/fhir/Patient", params={"family": "lefevre"}, headers=headers))
        assert (parsed.total, parsed.entry) == (0, None)


async def test_reads_and_searches_are_audited(session, client, world):
    # Plain values: the refused request below rolls its transaction back, which expires ORM objects.
    patient_id = (await make_patient(session, world["treating"])).id
    account_id = world["treating"].account.id
    audit = AuditRepository(session)
    before = (await audit.list_for_patient(patient_id, PageRequest(0, 100))).total

    assert (await client.get(f"/fhir/Patient/{patient_id}", headers=world["headers"])).status_code == 200
    events = (await audit.list_for_patient(patient_id, PageRequest(0, 100))).items
    assert len(events) == before + 1
    read = events[0]
    assert (read.action, read.object_type, read.channel, read.account_id) == (
        "read",
        "Patient",
        "fhir",
        account_id,
    )

    # A refused read leaves no read row for the patient (nothing was shown).
    outcome(await client.get(f"/fhir/Patient/{patient_id}", headers=world["colleague_headers"]), 404)
    assert (await audit.list_for_patient(patient_id, PageRequest(0, 100))).total == before + 1

    bundle(await client.get("/fhir/Patient", params={"family": "lefevre"}, headers=world["headers"]))
    last = (await audit.list_recent(PageRequest(0, 1))).items[0]
    assert (last.action, last.object_type, last.channel) == ("search", "Patient", "fhir")
    assert last.patient_id == patient_id and '"family":"lefevre"' in last.details


# --- Practitioner and Organization ----------------------------------------------------------------------


async def test_practitioner_read_and_search_by_identifier(session, client, world):
    professional = world["treating"].professional
    headers = world["headers"]
    idnps, rpps = professional.idnps, professional.rpps
    assert idnps == "8" + rpps

    response = await client.get(f"/fhir/Practitioner/{professional.id}", headers=headers)
    assert response.status_code == 200, response.text
    resource = Practitioner.model_validate_json(response.content)
    by_system = {i.system: i for i in resource.identifier}
    assert by_system["urn:oid:1.2.250.1.71.4.2.1"].value == idnps
    assert by_system["urn:oid:1.2.250.1.71.4.2.1"].type.coding[0].code == "IDNPS"
    assert by_system["https://rpps.esante.gouv.fr"].value == rpps
    assert by_system["https://rpps.esante.gouv.fr"].type.coding[0].code == "RPPS"
    assert (resource.name[0].family, resource.name[0].given, resource.active) == (
        professional.family_name,
        ["Claire"],
        True,
    )

    for identifier in (
        f"urn:oid:1.2.250.1.71.4.2.1|{idnps}",
        idnps,
        f"https://rpps.esante.gouv.fr|{rpps}",
        rpps,
    ):
        parsed = bundle(
            await client.get("/fhir/Practitioner", params={"identifier": identifier}, headers=headers)
        )
        assert ids(parsed) == [str(professional.id)], identifier
    parsed = bundle(
        await client.get(
            "/fhir/Practitioner", params={"identifier": f"{mapping.FINESS_SYSTEM}|{idnps}"}, headers=headers
        )
    )
    assert parsed.total == 0
    parsed = bundle(
        await client.get(
            "/fhir/Practitioner", params={"family": professional.family_name.lower()}, headers=headers
        )
    )
    assert ids(parsed) == [str(professional.id)]

    # Without an RPPS number the platform's local identifier is never published (nor searchable).
    local = await directory_service.create_professional(
        session,
        None,
        ProfessionalCreate(family_name="Sans", given_name="Numéro", profession=Profession.ADMINISTRATIF),
    )
    resource = Practitioner.model_validate_json(
        (await client.get(f"/fhir/Practitioner/{local.id}", headers=headers)).content
    )
    assert resource.identifier is None
    parsed = bundle(
        await client.get("/fhir/Practitioner", params={"identifier": local.idnps}, headers=headers)
    )
    assert parsed.total == 0


async def test_organization_read_and_search_by_finess(session, client, world):
    organisation = world["org_a"]
    headers = world["headers"]
    for identifier in (f"{mapping.FINESS_SYSTEM}|{organisation.finess}", organisation.finess):
        parsed = bundle(
            await client.get("/fhir/Organization", params={"identifier": identifier}, headers=headers)
        )
        assert ids(parsed) == [str(organisation.id)], identifier
    parsed = bundle(
        await client.get(
            "/fhir/Organization",
            params={"identifier": f"{mapping.RPPS_SYSTEM}|{organisation.finess}"},
            headers=headers,
        )
    )
    assert parsed.total == 0
    parsed = bundle(await client.get("/fhir/Organization", params={"name": "vitré"}, headers=headers))
    assert ids(parsed) == [str(organisation.id)]

    response = await client.get(f"/fhir/Organization/{organisation.id}", headers=headers)
    assert response.status_code == 200, response.text
    resource = Organization.model_validate_json(response.content)
    finess = resource.identifier[0]
    assert (finess.system, finess.value, finess.type.coding[0].code) == (
        "https://finess.esante.gouv.fr",
        organisation.finess,
        "FINEG",
    )
    assert (resource.name, resource.active, resource.type[0].text) == (
        "Centre hospitalier de Vitré",
        True,
        "Centre hospitalier",
    )
    assert (resource.address[0].city, resource.address[0].postalCode, resource.address[0].district) == (
        "Rennes",
        "35000",
        "35",
    )


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/fhir/Patient", {"birthdate": "2020-13-45"}, 400),
        ("/fhir/Patient", {"birthdate": "notadate"}, 400),
        ("/fhir/Patient", {"birthdate": "1954"}, 400),
        ("/fhir/Patient", {"birthdate": "ge1954-01-01"}, 400),
        ("/fhir/Patient", {"_count": "-1"}, 400),
        ("/fhir/Patient", {"_count": "abc"}, 400),
        ("/fhir/Patient", {"_offset": "-5"}, 400),
        ("/fhir/Patient", {"_offset": "9" * 5000}, 400),
        ("/fhir/Patient", {"gender": "femme"}, 400),
        ("/fhir/Patient", {"family:exact": "Lefèvre"}, 400),
        ("/fhir/Patient", {"family": "Lefèvre,Martin"}, 400),
        ("/fhir/Patient", {"identifier": f"{NIR_SYSTEM}|"}, 400),
        ("/fhir/Patient", {"family": "x" * 101}, 400),
        ("/fhir/Patient", {"_format": "xml"}, 406),
        ("/fhir/Patient/not-a-uuid", {}, 404),
        ("/fhir/Patient/00000000-0000-4000-8000-000000000000", {}, 404),
        ("/fhir/Practitioner/12", {}, 404),
        ("/fhir/Organization/00000000-0000-4000-8000-000000000000", {}, 404),
        ("/fhir/Condition", {}, 404),  # a resource type not served
    ],
)
async def test_bad_requests_get_an_operation_outcome(client, headers, path, params, status):
    outcome(await client.get(path, params=params, headers=headers), status)


async def test_repeated_parameter_and_unsupported_interaction(client, headers):
    outcome(await client.get("/fhir/Patient?family=a&family=b", headers=headers), 400)
    outcome(await client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=headers), 405)


async def test_unknown_parameters_are_ignored_unless_strict(session, client, world):
    await make_patient(session, world["treating"])
    parsed = bundle(
        await client.get(
            "/fhir/Patient", params={"family": "lefevre", "_sort": "family"}, headers=world["headers"]
        )
    )
    assert parsed.total == 1
    assert "_sort" not in link(parsed, "self")
    strict = {**world["headers"], "Prefer": "handling=strict"}
    issue = outcome(await client.get("/fhir/Patient", params={"_sort": "family"}, headers=strict), 400).issue[
        0
    ]
    assert "_sort" in issue.diagnostics
