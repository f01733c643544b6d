"""A real FHIR client (fhirpy, over aiohttp) against the app served by uvicorn on a local port.

The app shares the test's database session, so the server runs as a task in the test's own event loop
(not in a thread): every request is served on the loop that owns the session.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import date

import pytest
import uvicorn
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, OperationOutcome, ResourceNotFound

from telesante.directory.models import Role
from telesante.fhir import mapping
from tests.factories import make_actor, make_organisation, make_patient, token_for


@pytest.fixture
async def fhir_url(app) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port; the server takes the bound socket over
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # surfaces the start-up error
            raise RuntimeError("uvicorn stopped before starting")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def scenario(session):
    organisation = await make_organisation(session, "Centre hospitalier de Fougères")
    actor = await make_actor(session, organisation, Role.REQUESTER)
    patients = [
        await make_patient(
            session,
            actor,
            birth_family_name="Lefèvre",
            birth_given_names=f"Élodie {given}",
            birth_date=date(1954, 3, day),
            ipp=f"F-{day}",
        )
        for day, given in ((12, "Marie"), (13, "Anne"), (14, "Rose"))
    ]
    other = await make_patient(
        session, actor, birth_family_name="Martin", birth_given_names="Paul", sex="M", ipp="F-99"
    )
    headers = await token_for(session, actor)
    return {
        "organisation_id": str(organisation.id),
        "finess": organisation.finess,
        "patient_ids": {str(p.id) for p in patients},
        "other_id": str(other.id),
        "authorization": headers["Authorization"],
    }


async def test_fhirpy_searches_reads_and_pages(fhir_url, scenario):
    client = AsyncFHIRClient(fhir_url, authorization=scenario["authorization"])

    found = await client.resources("Patient").search(family="lefevre").fetch()
    assert {p.id for p in found} == scenario["patient_ids"]
    assert all(p["name"][0]["family"] == "LEFEVRE" for p in found)

    # fetch_all follows the absolute Bundle.link "next" URLs the server writes.
    paged = await client.resources("Patient").search(family="lefevre").limit(1).fetch_all()
    assert sorted(p.id for p in paged) == sorted(scenario["patient_ids"])

    patient = await client.get("Patient", scenario["other_id"])
    assert (patient.id, patient["gender"], patient["birthDate"]) == (
        scenario["other_id"],
        "male",
        "1954-03-12",
    )
    ipp = patient["identifier"][0]
    assert (ipp["system"], ipp["value"]) == (mapping.ipp_system(scenario["finess"]), "F-99")

    organization = (
        await client.resources("Organization")
        .search(identifier=f"{mapping.FINESS_SYSTEM}|{scenario['finess']}")
        .get()
    )
    assert (organization.id, organization["name"]) == (
        scenario["organisation_id"],
        "Centre hospitalier de Fougères",
    )


async def test_fhirpy_sees_fhir_errors(fhir_url, scenario):
    anonymous = AsyncFHIRClient(fhir_url)
    with pytest.raises(AuthorizationError):
        await anonymous.resources("Patient").fetch()
    capability = await anonymous.execute("metadata", method="get")
    assert capability["resourceType"] == "CapabilityStatement"

    client = AsyncFHIRClient(fhir_url, authorization=scenario["authorization"])
    with pytest.raises(ResourceNotFound):
        await client.get("Patient", "00000000-0000-4000-8000-000000000000")
    with pytest.raises(OperationOutcome) as raised:
        await client.resources("Patient").search(birthdate="2020-13-45").fetch()
    assert raised.value.resource["resourceType"] == "OperationOutcome"
