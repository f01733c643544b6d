"""Property-based run of schemathesis over /openapi.json against a real server: no request may produce a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from telesante.config import Settings
from telesante.main import create_app
from tests.live import start_live_server, stop_live_server

pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_dict(
    create_app(Settings(secret_key="schema-only-0123456789", data_dir="/tmp/telesante-schema")).openapi()
)


@pytest.fixture(scope="module")
def live():
    server = start_live_server()
    yield server
    stop_live_server(server)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_produces_a_server_error(case, live):
    headers = {"Authorization": f"Bearer {live.info['token']}"}
    # Real ids in some path parameters, so that deeper code runs too (the rest are random).
    if case.path_parameters and "patient_id" in case.path_parameters and hash(str(case.body)) % 2 == 0:
        case.path_parameters["patient_id"] = live.info["patient_id"]
    response = case.call(base_url=live.url, headers=headers)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500
