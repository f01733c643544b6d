"""HTTP edges: health, oversized and malformed bodies, wrong content types, error shapes, docs kept true."""

from pathlib import Path

from telesante.config import Settings
from telesante.directory.models import Role
from telesante.kit.pagination import PageRequest
from telesante.patients import service as patient_service
from telesante.patients.repository import PatientCriteria
from tests.factories import make_actor, make_organisation, token_for

ROOT = Path(__file__).resolve().parent.parent


async def test_healthz_reports_the_database(client, engine):
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == {
        "status": "ok",
        "engine": engine.dialect.name,
        "detail": "",
    }


async def test_openapi_is_served(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200 and "/api/patients" in response.json()["paths"]


async def _actor_headers(session):
    org = await make_organisation(session)
    actor = await make_actor(session, org, Role.REQUESTER)
    return actor, await token_for(session, actor)


async def test_oversized_body_is_refused(session, client, settings):
    _, headers = await _actor_headers(session)
    big = "x" * (settings.max_body_bytes + 10)
    response = await client.post(
        "/api/patients", headers={**headers, "content-type": "application/json"}, content=big
    )
    assert response.status_code == 413
    assert "octets" in response.json()["detail"]


async def test_malformed_json_names_the_problem(session, client):
    _, headers = await _actor_headers(session)
    response = await client.post(
        "/api/patients",
        headers={**headers, "content-type": "application/json"},
        content=b'{"birth_family_name": ',
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "JSON invalide" in response.json()["detail"]


async def test_wrong_content_type_is_refused(session, client):
    _, headers = await _actor_headers(session)
    response = await client.post(
        "/api/patients",
        headers={**headers, "content-type": "text/plain"},
        content=b"birth_family_name=Dupont",
    )
    assert 400 <= response.status_code < 500


async def test_invalid_field_is_named_in_french_and_nothing_is_stored(session, client):
    actor, headers = await _actor_headers(session)
    body = {
        "birth_family_name": "Dupont",
        "birth_given_names": "Jean",
        "birth_date": "1980-02-30",
        "sex": "M",
        "birth_place_insee": "35238",
    }
    response = await client.post("/api/patients", headers=headers, json=body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "birth_date" and "AAAA-MM-JJ" in problem["detail"]
    body.update(birth_date="1980-02-10", ins_matricule="180023523800199")
    response = await client.post("/api/patients", headers=headers, json=body)
    assert response.status_code == 422 and "clé du matricule INS" in response.json()["detail"]
    found = await patient_service.search_patients(
        session, actor.principal, PatientCriteria(family="dupont"), PageRequest()
    )
    assert found.total == 0


async def test_unknown_field_is_refused(session, client):
    _, headers = await _actor_headers(session)
    response = await client.post(
        "/api/patients", headers=headers, json={"birth_family_name": "X", "hacker": 1}
    )
    assert response.status_code == 422


async def test_api_without_token_is_401_problem(client):
    response = await client.get("/api/patients")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["title"] == "Authentification requise"


async def test_unknown_route_is_a_french_404(client):
    response = await client.get("/api/nimporte-quoi")
    assert response.status_code == 404 and response.json()["title"] == "Introuvable"
    page = await client.get("/page-inexistante")
    assert page.status_code == 404 and "Introuvable" in page.text


async def test_non_uuid_patient_id_is_a_client_error(session, client):
    _, headers = await _actor_headers(session)
    response = await client.get("/api/patients/not-a-uuid", headers=headers)
    assert response.status_code == 422


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "settings.md").read_text()
    missing = [name for name in Settings.model_fields if f"TELESANTE_{name.upper()}" not in text]
    assert not missing, f"settings missing from docs/settings.md: {missing}"


async def test_invalid_email_is_explained_in_french(session, client):
    _, headers = await _actor_headers(session)
    body = {
        "birth_family_name": "Dupont",
        "birth_given_names": "Jean",
        "birth_date": "1980-02-10",
        "sex": "M",
        "birth_place_insee": "35238",
        "email": "pas-une-adresse",
    }
    response = await client.post("/api/patients", headers=headers, json=body)
    assert response.status_code == 422
    assert (
        response.json()["field"] == "email"
        and response.json()["detail"] == "email : adresse électronique invalide"
    )


def test_fastapi_opentelemetry_is_asked_for_only_when_configured(settings):
    """FastAPI looks for an OpenTelemetry SDK at every request unless told not to: off by default, on with
    TELESANTE_OPENTELEMETRY."""
    from telesante.main import create_app

    off = create_app(settings)
    assert not any(off._telemetry[kind] for kind in ("tracing", "metrics", "logs"))
    assert off._native_telemetry.enabled() is False
    on = create_app(settings.model_copy(update={"opentelemetry": True}))
    assert all(on._telemetry[kind] for kind in ("tracing", "metrics", "logs"))


def test_no_route_sends_a_dependency_to_a_worker_thread(settings):
    """FastAPI runs a plain ``def`` dependency in a worker thread: a round trip between threads on every request
    that uses it (the settings, the blob store: nearly all of them). Dependencies are ``async def`` unless they
    block; none does today."""
    import inspect

    from telesante.main import create_app
    from tests.routes import iter_api_routes

    found: set[str] = set()

    def walk_dependencies(dependant) -> None:
        for dependency in dependant.dependencies:
            call = dependency.call
            if call is not None and not (
                inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)
            ):
                found.add(f"{call.__module__}.{call.__qualname__}")
            walk_dependencies(dependency)

    routes = [route for _prefix, route in iter_api_routes(create_app(settings))]
    for route in routes:
        walk_dependencies(route.dependant)
    assert len(routes) > 100  # the walk reaches the included routers
    assert found == set()
