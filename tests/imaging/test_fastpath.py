"""The frames fast path (imaging/fastpath.py): after the first frame of a series went through the route (authenticated,
scoped, audited), the same caller's next frames are read from the page cache straight into the response. It must
give the very bytes the route gives, fall back to the route for anything it does not know, and never serve a caller
the route has not allowed."""

from __future__ import annotations

import asyncio
import io

import httpx
import pydicom
import pytest

from telesante.imaging import fastpath
from telesante.main import create_app
from telesante.web import zerocopy
from tests.conftest import _TestDatabase
from tests.events.conftest import serving
from tests.imaging.test_dicomweb import client, datasets

MULTIPART_OCTETS = {"Accept": 'multipart/related; type="application/octet-stream"'}


@pytest.fixture(params=["asgi", "kernel"])
async def app_served(request, session, engine, settings):
    """The application served by uvicorn: with its stock HTTP protocol (the fast path answers as ASGI middleware),
    and with the platform's own (``web/zerocopy.py``: the fast path answers before the application, and the kernel
    sends the frame)."""
    configured = settings.model_copy(update={"jobs_enabled": False, "dicom_port": 0})
    app = create_app(configured, database=_TestDatabase(session, engine))
    fastpath.forget_all()
    http = zerocopy.ZeroCopyHttpToolsProtocol if request.param == "kernel" else "httptools"
    async with serving(app, http) as server:
        yield app, server.url
    fastpath.forget_all()


class CountingReads:
    """Counts the fast path's reads on the app's blob store, whichever way it reads (and can pretend the page
    cache is cold)."""

    def __init__(self, store, monkeypatch, *, cold: bool = False):
        self.calls = self.opened = 0
        read_cached_into, mapped_if_cached = store.read_cached_into, store.mapped_if_cached

        def counted_read(key, offset, buffer):
            self.calls += 1
            return False if cold else read_cached_into(key, offset, buffer)

        def counted_map(key, offset, length):  # counted when it maps: else the ASGI fast path reads (counted)
            view = None if cold else mapped_if_cached(key, offset, length)
            self.calls += view is not None
            self.opened += view is not None
            return view

        monkeypatch.setattr(store, "read_cached_into", counted_read)
        monkeypatch.setattr(store, "mapped_if_cached", counted_map)


def _frame_url(base: str, ds) -> str:
    return (
        f"{base}/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/1"
    )


def _single_part(response: httpx.Response) -> bytes:
    """The one part of a multipart/related answer (boundary from Content-Type, the part's own Content-Length)."""
    boundary = response.headers["content-type"].split("boundary=")[1].strip('"')
    body = response.content
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"\r\n--{boundary}--\r\n".encode())
    head, _, rest = body.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    return rest[:length]


async def _stored_series(url: str, token: dict[str, str], slices: int = 4):
    series = datasets(slices)
    await asyncio.to_thread(client(url, token).store_instances, series)
    return series


@pytest.mark.parametrize("cold", [False, True], ids=["page-cache", "cold-cache"])
async def test_next_frames_are_the_routes_bytes(app_served, actors, monkeypatch, cold):
    app, url = app_served
    series = await _stored_series(url, actors["treating"])
    reads = CountingReads(app.state.blob_store, monkeypatch, cold=cold)
    async with httpx.AsyncClient(headers=actors["treating"]) as http:
        first = await http.get(_frame_url(url, series[0]), headers=MULTIPART_OCTETS)
        assert first.status_code == 200 and reads.calls == 0  # the route: authenticated, scoped, audited
        for ds in series[1:]:
            response = await http.get(_frame_url(url, ds), headers=MULTIPART_OCTETS)
            assert response.status_code == 200
            assert _single_part(response) == ds.PixelData
            assert response.headers["cache-control"] == "private, no-store"
            assert "content-security-policy" in response.headers
        assert _single_part(first) == series[0].PixelData
        single = await http.get(_frame_url(url, series[1]), headers={"Accept": "application/octet-stream"})
        assert single.status_code == 200 and single.content == series[1].PixelData
    assert reads.calls == len(
        series
    )  # every next frame went through the fast path (cold: then read in a thread)


async def test_only_a_caller_the_route_allowed_is_served(app_served, actors, monkeypatch):
    """The colleague elsewhere and the outsider get the route's 404 even right after the treating doctor's
    frames were served fast; an unknown token gets 401; an expired memory sends the caller back to the route."""
    app, url = app_served
    series = await _stored_series(url, actors["treating"])
    reads = CountingReads(app.state.blob_store, monkeypatch)
    async with httpx.AsyncClient() as http:
        for ds in series[:2]:
            ok = await http.get(_frame_url(url, ds), headers={**actors["treating"], **MULTIPART_OCTETS})
            assert ok.status_code == 200
        assert reads.calls == 1
        for who in ("colleague", "outsider"):
            refused = await http.get(_frame_url(url, series[2]), headers={**actors[who], **MULTIPART_OCTETS})
            assert refused.status_code == 404, who
        forged = await http.get(
            _frame_url(url, series[2]), headers={"Authorization": "Bearer ts_forged", **MULTIPART_OCTETS}
        )
        assert forged.status_code == 401
        assert reads.calls == 1  # none of them reached the fast path's read

        monkeypatch.setattr(fastpath, "FAST_PRINCIPAL_SECONDS", 0.0)
        again = await http.get(_frame_url(url, series[3]), headers={**actors["treating"], **MULTIPART_OCTETS})
        assert again.status_code == 200 and _single_part(again) == series[3].PixelData
        assert reads.calls == 1  # served by the route again


async def test_what_the_fast_path_does_not_handle_goes_to_the_route(app_served, actors, monkeypatch):
    app, url = app_served
    series = await _stored_series(url, actors["treating"])
    reads = CountingReads(app.state.blob_store, monkeypatch)
    async with httpx.AsyncClient(headers=actors["treating"]) as http:
        assert (await http.get(_frame_url(url, series[0]), headers=MULTIPART_OCTETS)).status_code == 200
        beyond = await http.get(_frame_url(url, series[1])[: -len("/1")] + "/2", headers=MULTIPART_OCTETS)
        assert beyond.status_code == 404 and "image" in beyond.json()["detail"].lower()
        refused = await http.get(
            _frame_url(url, series[1]), headers={"Accept": 'multipart/related; type="image/jp2"'}
        )
        assert refused.status_code == 406
    assert reads.calls == 0


async def test_series_retrieval_announces_its_length_and_sends_the_stored_files(app_served, actors):
    """WADO-RS series: Content-Length announced (sizes from the index), each part the stored file byte for byte;
    a file missing from the storage is a clear error before anything is sent, not a cut answer."""
    app, url = app_served
    series = await _stored_series(url, actors["treating"], slices=3)
    sent = {ds.SOPInstanceUID: ds for ds in series}
    path = f"{url}/dicomweb/studies/{series[0].StudyInstanceUID}/series/{series[0].SeriesInstanceUID}"
    accept = {"Accept": 'multipart/related; type="application/dicom"'}
    async with httpx.AsyncClient(headers=actors["treating"]) as http:
        response = await http.get(path, headers=accept)
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(response.content)
        assert "transfer-encoding" not in response.headers
        boundary = response.headers["content-type"].split("boundary=")[1]
        parts = response.content.split(f"--{boundary}".encode())[1:-1]
        assert len(parts) == 3
        for part in parts:
            head, _, data = part.partition(b"\r\n\r\n")
            data = data[:-2]  # the CRLF before the next boundary
            assert f"Content-Length: {len(data)}".encode() in head
            ds = pydicom.dcmread(io.BytesIO(data))
            assert ds.PixelData == sent[ds.SOPInstanceUID].PixelData
        store = app.state.blob_store
        for key in [p for p in (store.root).rglob("*") if p.is_file()]:
            key.unlink()
        missing = await http.get(path, headers=accept)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")


async def test_a_revoked_token_is_not_served_from_memory(app_served, actors):
    """Revoking the token (through the API, as its owner does) drops what the fast path kept for the account at
    once, not when it expires: the very next frame goes to the route, which refuses the token."""
    _app, url = app_served
    series = await _stored_series(url, actors["treating"], slices=3)
    async with httpx.AsyncClient(headers=actors["treating"]) as http:
        for ds in series[:2]:  # the route, then the fast path
            assert (await http.get(_frame_url(url, ds), headers=MULTIPART_OCTETS)).status_code == 200
        assert fastpath._principals  # the caller is remembered
        tokens = (await http.get(f"{url}/api/tokens")).json()
        token_id = next(t["id"] for t in tokens if t["revoked_at"] is None)
        assert (await http.post(f"{url}/api/tokens/{token_id}/revoke")).status_code == 200
        assert not fastpath._principals and not fastpath._decisions
        refused = await http.get(_frame_url(url, series[2]), headers=MULTIPART_OCTETS)
        assert refused.status_code == 401
        again = await http.get(_frame_url(url, series[1]), headers=MULTIPART_OCTETS)  # one it answered fast
        assert again.status_code == 401


async def test_large_parts_are_read_in_a_thread_even_when_cached(tmp_path, monkeypatch):
    """Copying a large range would hold the event loop: above IN_LOOP_READ_BYTES the page-cache path is not tried,
    the bytes come from the ranged read, and the buffer holds head, content and tail in place."""
    from telesante.imaging import service
    from telesante.storage.blobs import FilesystemBlobStore

    store = FilesystemBlobStore(tmp_path / "blobs")
    data = bytes(range(256)) * 100
    await store.put("k/a/big", data, "application/dicom")
    tried = []
    original = store.read_cached_into
    monkeypatch.setattr(store, "read_cached_into", lambda *a: tried.append(a) or original(*a))
    monkeypatch.setattr(service, "IN_LOOP_READ_BYTES", 1000)
    part = await service.read_part(store, "k/a/big", 5000, b"HEAD", b"TAIL", offset=100)
    assert bytes(part) == b"HEAD" + data[100:5100] + b"TAIL" and tried == []
    part = await service.read_part(store, "k/a/big", 900, b"H", b"T", offset=10)
    assert bytes(part) == b"H" + data[10:910] + b"T" and len(tried) == 1
    from telesante.storage.blobs import StorageUnavailable

    with pytest.raises(StorageUnavailable):  # the file is shorter than the index says: never a short answer
        await service.read_part(store, "k/a/big", 900, b"H", b"T", offset=len(data) - 100)


@pytest.mark.parametrize("lapsing", ["FRAME_AUDIT_SECONDS", "ACCESS_CACHE_SECONDS"])
async def test_a_kept_decision_lasts_no_longer_than_what_it_rests_on(
    app_served, actors, monkeypatch, lapsing
):
    """The early answer keeps its decision for the same path, credential and Accept; once the study's access (or
    the series' audit) is no longer fresh, the next request for that very frame goes to the route again, which
    checks the access in the database and audits as it does for any first frame."""
    from telesante.imaging import service

    app, url = app_served
    series = await _stored_series(url, actors["treating"], slices=3)
    monkeypatch.setattr(service, lapsing, 2.0)  # ample for the four requests below, even on a busy machine
    located = []
    locate = service.locate_frames

    async def counted_locate(*args, **kwargs):
        located.append(args[4])
        return await locate(*args, **kwargs)

    monkeypatch.setattr(service, "locate_frames", counted_locate)
    async with httpx.AsyncClient(headers=actors["treating"]) as http:
        for _ in range(2):  # the route once, then the fast path (twice for the second frame)
            for ds in series[:2]:
                assert (await http.get(_frame_url(url, ds), headers=MULTIPART_OCTETS)).status_code == 200
        assert located == [series[0].SOPInstanceUID]
        await asyncio.sleep(2.1)
        response = await http.get(_frame_url(url, series[1]), headers=MULTIPART_OCTETS)
        assert response.status_code == 200 and _single_part(response) == series[1].PixelData
        assert located == [series[0].SOPInstanceUID, series[1].SOPInstanceUID]  # decided by the route again


async def test_frames_in_the_page_cache_are_sent_by_the_kernel(app_served, actors, monkeypatch, request):
    """With the platform's protocol, a frame the caller may read and the page cache holds is answered before the
    application runs (no ASGI read at all), with the route's bytes; a request from another origin (CORS) still goes
    to the application."""
    app, url = app_served
    series = await _stored_series(url, actors["treating"])
    async with httpx.AsyncClient(headers=actors["treating"]) as http:
        for ds in series:  # the route, then the ASGI fast path: the files come into the page cache
            assert (await http.get(_frame_url(url, ds), headers=MULTIPART_OCTETS)).status_code == 200
        reads = CountingReads(app.state.blob_store, monkeypatch)
        for ds in series:
            response = await http.get(_frame_url(url, ds), headers=MULTIPART_OCTETS)
            assert response.status_code == 200 and _single_part(response) == ds.PixelData
            assert int(response.headers["content-length"]) == len(response.content)
            assert response.headers["cache-control"] == "private, no-store"
            assert response.headers["x-content-type-options"] == "nosniff"
        single = await http.get(_frame_url(url, series[1]), headers={"Accept": "application/octet-stream"})
        assert single.status_code == 200 and single.content == series[1].PixelData
        if request.node.callspec.params["app_served"] == "kernel":
            assert (
                reads.opened == reads.calls == len(series) + 1
            )  # every one from its mapping by the kernel, none read in Python
        else:
            assert reads.opened == 0 and reads.calls == len(series) + 1
        opened = reads.opened
        cross = await http.get(
            _frame_url(url, series[2]), headers={**MULTIPART_OCTETS, "Origin": "https://viewer.example"}
        )
        assert cross.status_code == 200 and _single_part(cross) == series[2].PixelData
        assert reads.opened == opened  # not answered early
