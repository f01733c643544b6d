"""CORS for /dicomweb (a viewer such as OHIF served from another origin): only the configured origins, only under
/dicomweb, bearer tokens only (no credentials across origins), frames of the fast path included."""

from __future__ import annotations

import asyncio

import httpx
import pydantic
import pytest

from telesante.config import Settings
from telesante.imaging import fastpath
from telesante.main import create_app
from tests.conftest import _TestDatabase
from tests.events.conftest import serving
from tests.imaging.test_dicomweb import client, datasets

OHIF = "https://ohif.chu-rennes.example.fr"


@pytest.fixture
async def served_with(session, engine, settings):
    async def start(origins: str):
        configured = settings.model_copy(
            update={"jobs_enabled": False, "dicom_port": 0, "dicomweb_cors_origins": origins}
        )
        return create_app(configured, database=_TestDatabase(session, engine))

    return start


async def test_the_configured_origin_may_call_dicomweb_with_a_bearer_token(served_with, actors):
    fastpath.forget_all()
    app = await served_with(OHIF)
    async with serving(app) as server:
        url = server.url
        series = datasets(2)
        await asyncio.to_thread(client(url, actors["treating"]).store_instances, series)
        async with httpx.AsyncClient() as http:
            preflight = await http.options(
                f"{url}/dicomweb/studies",
                headers={
                    "Origin": OHIF,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "authorization,accept",
                },
            )
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == OHIF
            assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
            assert "access-control-allow-credentials" not in preflight.headers

            foreign = await http.options(
                f"{url}/dicomweb/studies",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
            )
            assert foreign.status_code == 400
            assert "access-control-allow-origin" not in foreign.headers

            headers = {"Origin": OHIF, **actors["treating"]}
            studies = await http.get(f"{url}/dicomweb/studies", headers=headers)
            assert studies.status_code == 200 and len(studies.json()) == 1
            assert studies.headers["access-control-allow-origin"] == OHIF
            frames = {"Accept": 'multipart/related; type="application/octet-stream"', **headers}
            for ds in series:  # the route, then the fast path: both carry the header
                frame = await http.get(
                    f"{url}/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                    f"/instances/{ds.SOPInstanceUID}/frames/1",
                    headers=frames,
                )
                assert frame.status_code == 200
                assert frame.headers["access-control-allow-origin"] == OHIF

            elsewhere = await http.get(f"{url}/api/me", headers=headers)
            assert "access-control-allow-origin" not in elsewhere.headers  # only /dicomweb


async def test_no_origin_is_allowed_by_default(served_with, actors):
    app = await served_with("")
    async with serving(app) as server, httpx.AsyncClient() as http:
        response = await http.get(
            f"{server.url}/dicomweb/studies", headers={"Origin": OHIF, **actors["treating"]}
        )
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("bad", ["*", "https://ohif.example.fr/viewer", "ohif.example.fr", "ftp://x.fr"])
def test_origins_are_checked_at_start_up(bad):
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings(dicomweb_cors_origins=f"https://ok.example.fr, {bad}")
    assert "sans chemin ni joker" in str(caught.value)
    assert Settings(dicomweb_cors_origins=" https://a.fr , http://b.fr:8042").dicomweb_cors_origin_list == [
        "https://a.fr",
        "http://b.fr:8042",
    ]
