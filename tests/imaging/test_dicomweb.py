"""DICOMweb with dicomweb-client (a client no one here wrote) against the app served on a local port: STOW-RS,
QIDO-RS, WADO-RS (instances, metadata, frames, rendered), uncompressed and compressed studies; the colleague of
another hospital finds nothing; bad input answered with a reason (httpx)."""

from __future__ import annotations

import asyncio
import io

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid
from requests.exceptions import HTTPError

from telesante.imaging import dicomweb
from telesante.imaging.phantom import ct_slice
from telesante.imaging.service import joined
from telesante.main import create_app
from telesante.web import zerocopy
from tests.conftest import _TestDatabase
from tests.events.conftest import serving
from tests.imaging.test_listener import dcmtk


@pytest.fixture
async def served(session, engine, settings):
    """The application served by uvicorn with the platform's HTTP protocol, as deployed (``web/zerocopy.py``: a
    STOW-RS body of a megabyte or more is read by the protocol itself)."""
    configured = settings.model_copy(update={"jobs_enabled": False, "dicom_port": 0})
    app = create_app(configured, database=_TestDatabase(session, engine))
    async with serving(app, zerocopy.protocol()) as server:
        yield server.url


def client(url: str, headers: dict[str, str]) -> DICOMwebClient:
    web = DICOMwebClient(url=f"{url}/dicomweb", headers=headers)
    return web


def datasets(slices: int = 3, **kwargs) -> list[pydicom.Dataset]:
    study_uid, series_uid = generate_uid(), generate_uid()
    return [
        pydicom.dcmread(io.BytesIO(ct_slice(study_uid, series_uid, n, **kwargs)))
        for n in range(1, slices + 1)
    ]


@pytest.mark.parametrize("sent", ["sized", "chunked"])
async def test_stow_qido_wado_with_dicomweb_client(served, actors, monkeypatch, sent):
    """``sized``: the STOW-RS body announced with its Content-Length (as curl and browsers send it), read by the
    platform's protocol itself; ``chunked``: dicomweb-client's default above a megabyte (chunked transfer encoding),
    read by uvicorn's."""
    web = client(served, actors["treating"])
    if sent == "sized":
        web.set_chunk_size(10**8)
    series = datasets(3)
    study_uid, series_uid = series[0].StudyInstanceUID, series[0].SeriesInstanceUID
    received: list[str] = []
    collect = dicomweb._PartCollector.on_part_data

    def on_part_data(self, data, start, end):
        received.append(type(data).__name__)
        collect(self, data, start, end)

    monkeypatch.setattr(dicomweb._PartCollector, "on_part_data", on_part_data)
    answer = await asyncio.to_thread(web.store_instances, series)
    stored = [item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence]
    assert sorted(stored) == sorted(ds.SOPInstanceUID for ds in series)
    assert "FailedSOPSequence" not in answer
    # 1.5 MB: a sized body is read by the platform's protocol into received chunks (web/zerocopy.py)
    assert ("ReceivedChunk" in received) == (sent == "sized")

    found = await asyncio.to_thread(
        web.search_for_studies, search_filters={"PatientID": "IPP-0001", "ModalitiesInStudy": "CT"}
    )
    assert [pydicom.Dataset.from_json(s).StudyInstanceUID for s in found] == [study_uid]
    study = pydicom.Dataset.from_json(found[0])
    assert (study.NumberOfStudyRelatedInstances, study.PatientName) == (3, "LE GOFF^YANN")
    assert (
        await asyncio.to_thread(web.search_for_studies, search_filters={"StudyDate": "20200101-20201231"})
        == []
    )
    in_range = await asyncio.to_thread(
        web.search_for_studies, search_filters={"StudyDate": "20261101-20261130"}
    )
    assert len(in_range) == 1
    series_found = await asyncio.to_thread(web.search_for_series, study_uid)
    assert [pydicom.Dataset.from_json(s).SeriesInstanceUID for s in series_found] == [series_uid]
    instances = await asyncio.to_thread(web.search_for_instances, study_uid, series_uid)
    assert sorted(pydicom.Dataset.from_json(i).InstanceNumber for i in instances) == [1, 2, 3]

    metadata = await asyncio.to_thread(web.retrieve_series_metadata, study_uid, series_uid)
    assert len(metadata) == 3
    first = pydicom.Dataset.from_json(metadata[0], bulk_data_uri_handler=lambda *a: b"")
    assert (first.Rows, first.Columns, first.Modality) == (512, 512, "CT")

    by_number = {ds.InstanceNumber: ds for ds in series}
    sop_uid = by_number[2].SOPInstanceUID
    frames = await asyncio.to_thread(web.retrieve_instance_frames, study_uid, series_uid, sop_uid, [1])
    assert frames[0] == by_number[2].PixelData  # the stored pixel bytes, unchanged
    instance = await asyncio.to_thread(web.retrieve_instance, study_uid, series_uid, sop_uid)
    assert instance.SOPInstanceUID == sop_uid and instance.PixelData == by_number[2].PixelData
    retrieved = await asyncio.to_thread(web.retrieve_series, study_uid, series_uid)
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(ds.SOPInstanceUID for ds in series)
    rendered = await asyncio.to_thread(
        web.retrieve_instance_rendered,
        study_uid,
        series_uid,
        sop_uid,
        media_types=("image/png",),
        params={"window": "40,80"},
    )
    assert rendered[:8] == b"\x89PNG\r\n\x1a\n"

    # the colleague elsewhere and the outsider: nothing found, nothing retrieved
    for who in ("colleague", "outsider"):
        other = client(served, actors[who])
        assert (
            await asyncio.to_thread(other.search_for_studies, search_filters={"PatientID": "IPP-0001"}) == []
        )
        with pytest.raises(HTTPError) as refused:
            await asyncio.to_thread(other.retrieve_series_metadata, study_uid, series_uid)
        assert refused.value.response.status_code == 404


async def test_a_series_is_sent_alike_from_the_page_cache_and_from_the_disk(served, actors, monkeypatch):
    """WADO-RS series retrieval: a file the page cache holds goes out as a view of the file mapped in memory, any other
    is read into a buffer; mixed in one answer, every part is whole and in place, and the announced length is the
    body's (httpx refuses a body shorter or longer than its Content-Length)."""
    from telesante.storage.blobs import FilesystemBlobStore

    web = client(served, actors["treating"])
    web.set_chunk_size(10**8)
    series = datasets(4)
    await asyncio.to_thread(web.store_instances, series)
    study_uid, series_uid = series[0].StudyInstanceUID, series[0].SeriesInstanceUID
    real = FilesystemBlobStore.mapped_if_cached
    mapped: list[bool] = []

    def every_other(self, key, offset, length):
        view = None
        if len(mapped) % 2 == 0:  # in the page cache (read just now), sent from its mapping
            self.path_for(key).read_bytes()
            view = real(self, key, offset, length)
        mapped.append(view is not None)
        return view

    monkeypatch.setattr(FilesystemBlobStore, "mapped_if_cached", every_other)
    retrieved = await asyncio.to_thread(web.retrieve_series, study_uid, series_uid)
    assert mapped == [True, False, True, False]
    sent = {ds.SOPInstanceUID: ds for ds in series}
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(sent)
    for ds in retrieved:
        assert (
            ds.PixelData == sent[ds.SOPInstanceUID].PixelData
            and ds.InstanceNumber == sent[ds.SOPInstanceUID].InstanceNumber
        )
    mapped.clear()
    async with httpx.AsyncClient(base_url=f"{served}/dicomweb", headers=actors["treating"]) as http:
        response = await http.get(
            f"/studies/{study_uid}/series/{series_uid}",
            headers={"Accept": 'multipart/related; type="application/dicom"'},
        )
    assert response.status_code == 200 and len(response.content) == int(response.headers["content-length"])
    boundary = response.headers["content-type"].split("boundary=")[1].encode()
    parts = response.content.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n" and len(parts) == 6
    for part in parts[1:-1]:
        head, _, payload = part.partition(b"\r\n\r\n")
        assert payload.endswith(b"\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        dataset = pydicom.dcmread(io.BytesIO(payload[:-2]))
        assert len(payload) - 2 == length and dataset.PixelData == sent[dataset.SOPInstanceUID].PixelData


def compressed(syntax) -> list[pydicom.Dataset]:
    out = datasets(2, rows=128)
    for ds in out:
        ds.compress(syntax)
    return out


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=["rle", "jpeg2000"])
async def test_compressed_frames_as_stored_or_decoded(served, actors, syntax):
    web = client(served, actors["treating"])
    series = compressed(syntax)
    await asyncio.to_thread(web.store_instances, series)
    ds = series[0]
    expected = ds.pixel_array
    native = await asyncio.to_thread(
        web.retrieve_instance_frames, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, [1]
    )
    decoded = np.frombuffer(native[0], dtype=expected.dtype).reshape(expected.shape)
    assert np.array_equal(decoded, expected)  # lossless: the same samples
    as_stored = await asyncio.to_thread(
        web.retrieve_instance_frames,
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        [1],
        media_types=(("application/octet-stream", "*"),),
    )
    fragment = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    assert as_stored[0] == fragment  # the compressed bytes, as received


@pytest.mark.parametrize(
    ("option", "syntax"),
    [("+e1", "1.2.840.10008.1.2.4.70"), ("+el", "1.2.840.10008.1.2.4.57")],
    ids=["sv1", "sv6"],
)
async def test_jpeg_lossless_made_by_dcmtk_is_decoded(served, actors, tmp_path, option, syntax):
    ds = datasets(1, rows=128)[0]
    source, target = tmp_path / "in.dcm", tmp_path / "out.dcm"
    ds.save_as(source, enforce_file_format=True)
    code, output = await dcmtk("dcmcjpeg", option, str(source), str(target))
    assert code == 0, output
    lossless = pydicom.dcmread(target)
    assert lossless.file_meta.TransferSyntaxUID == syntax
    web = client(served, actors["treating"])
    await asyncio.to_thread(web.store_instances, [lossless])
    frames = await asyncio.to_thread(
        web.retrieve_instance_frames, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, [1]
    )
    decoded = np.frombuffer(frames[0], dtype=np.int16).reshape(128, 128)
    assert np.array_equal(decoded, ds.pixel_array)
    rendered = await asyncio.to_thread(
        web.retrieve_instance_rendered, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    assert rendered[:2] == b"\xff\xd8"  # JPEG


def multipart(*parts: bytes, boundary: str = "frontiere") -> tuple[bytes, dict[str, str]]:
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n" for part in parts
    )
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}


async def test_bad_input_is_answered_with_a_reason(served, actors):
    good = [ct_slice(generate_uid(), generate_uid(), n, rows=64) for n in (1, 2)]
    truncated = good[1][:-500]
    async with httpx.AsyncClient(base_url=f"{served}/dicomweb", headers=actors["treating"]) as http:
        response = await http.post(
            "/studies", content=b"not multipart", headers={"Content-Type": "application/dicom"}
        )
        assert response.status_code == 415 and "multipart/related" in response.json()["detail"]
        body, headers = multipart(good[0], truncated, b"%PDF-1.7 pas une image" * 10)
        response = await http.post("/studies", content=body, headers=headers)
        assert response.status_code == 202  # some stored, some refused
        result = response.json()
        assert len(result["00081199"]["Value"]) == 1
        failures = result["00081198"]["Value"]
        assert [f["00081197"]["Value"][0] for f in failures] == [0xC000, 0xC000]
        assert "tronqué" in failures[0]["00091001"]["Value"][0]
        body, headers = multipart(truncated)
        response = await http.post("/studies", content=body, headers=headers)
        assert response.status_code == 409  # nothing stored
        study_uid = pydicom.dcmread(io.BytesIO(good[0])).StudyInstanceUID
        body, headers = multipart(good[1])
        response = await http.post(f"/studies/{study_uid}", content=body, headers=headers)
        assert response.status_code == 409
        assert response.json()["00081198"]["Value"][0]["00081197"]["Value"][0] == 0xA900  # not this study
        response = await http.get("/studies", params={"NomInconnu": "x"})
        assert response.status_code == 400 and "NomInconnu" in response.json()["detail"]
        response = await http.get("/studies", params={"StudyDate": "2026-11-24"})
        assert response.status_code == 400 and response.json()["field"] == "StudyDate"
        response = await http.get("/studies", params={"PatientSex": "M"})
        assert response.status_code == 200 and "PatientSex" in response.headers["warning"]
        response = await http.get("/studies/1.2.3/metadata")
        assert response.status_code == 404
        response = await http.get("/studies/not-a-uid/metadata")
        assert response.status_code == 400
        ds = pydicom.dcmread(io.BytesIO(good[0]))
        frames = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames"
        response = await http.get(f"{frames}/2")
        assert response.status_code == 404 and "1" in response.json()["detail"]
        response = await http.get(f"{frames}/1", headers={"Accept": 'multipart/related; type="image/jp2"'})
        assert response.status_code == 406
        response = await http.get(f"{frames}/1/rendered", headers={"Accept": "image/gif"})
        assert response.status_code == 406
        response = await http.get(f"{frames}/1/rendered", params={"window": "abc"})
        assert response.status_code == 400 and response.json()["field"] == "window"
    async with httpx.AsyncClient(base_url=f"{served}/dicomweb") as anonymous:
        assert (await anonymous.get("/studies")).status_code == 401


async def test_the_request_sequence_of_the_ohif_viewer(served, actors):
    """What OHIF v3's DICOMweb data source asks, in its order and with its headers: the study list (wildcards,
    fuzzymatching, includefield), the series, each series' metadata, the thumbnails, then the frames as stored."""
    web = client(served, actors["treating"])
    series = datasets(3)
    await asyncio.to_thread(web.store_instances, series)
    study_uid, series_uid = series[0].StudyInstanceUID, series[0].SeriesInstanceUID
    qido = {**actors["treating"], "Accept": "application/dicom+json"}
    async with httpx.AsyncClient(base_url=f"{served}/dicomweb", headers=qido) as http:
        listing = await http.get(
            "/studies",
            params={
                "limit": "101",
                "offset": "0",
                "fuzzymatching": "false",
                "includefield": "00081030,00080060",
                "PatientName": "*goff*",
                "StudyDescription": "TDM*",
                "StudyDate": "20261124-",
            },
        )
        assert listing.status_code == 200, listing.text
        assert [s["0020000D"]["Value"][0] for s in listing.json()] == [study_uid]
        study = listing.json()[0]
        assert study["00080061"]["Value"] == ["CT"] and study["00201208"]["Value"] == [3]
        missing = await http.get("/studies", params={"PatientName": "*dupont*"})
        assert missing.json() == []
        found = await http.get(f"/studies/{study_uid}/series")
        assert found.json()[0]["0020000E"]["Value"] == [series_uid]
        metadata = (await http.get(f"/studies/{study_uid}/series/{series_uid}/metadata")).json()
        assert {item["00083002"]["Value"][0] for item in metadata} == {"1.2.840.10008.1.2.1"}
        frame_url = metadata[0]["7FE00010"]["BulkDataURI"]
        thumbnail = await http.get(
            f"/studies/{study_uid}/series/{series_uid}/thumbnail", headers={"Accept": "image/jpeg"}
        )
        assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"
        frame = await http.get(
            frame_url,
            headers={"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"},
        )
        assert frame.status_code == 200
        assert frame.headers["content-type"].startswith("multipart/related")
        boundary = frame.headers["content-type"].split("boundary=")[1]
        head, _, rest = frame.content.partition(b"\r\n\r\n")
        assert b"transfer-syntax=1.2.840.10008.1.2.1" in head
        pixels = rest[: rest.rindex(b"\r\n--" + boundary.encode())]
        sop = metadata[0]["00080018"]["Value"][0]
        assert pixels == next(ds for ds in series if ds.SOPInstanceUID == sop).PixelData


async def test_jpeg_baseline_made_by_dcmtk_is_decoded(served, actors, tmp_path):
    """8-bit lossy JPEG (process 1), as ultrasound and secondary captures send it: decoded close to the original."""
    ds = datasets(1, rows=128)[0]
    hounsfield = ds.pixel_array.astype(np.int32) - 1024
    original = np.clip((hounsfield + 100) * 2, 0, 255).astype(np.uint8)  # a soft-tissue window, 8 bits
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = original.tobytes()
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    source, target = tmp_path / "in.dcm", tmp_path / "out.dcm"
    ds.save_as(source, enforce_file_format=True)
    code, output = await dcmtk("dcmcjpeg", "+eb", str(source), str(target))
    assert code == 0, output
    baseline = pydicom.dcmread(target)
    assert baseline.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    web = client(served, actors["treating"])
    await asyncio.to_thread(web.store_instances, [baseline])
    frames = await asyncio.to_thread(  # lossy: DCMTK gave the image a new SOP Instance UID
        web.retrieve_instance_frames,
        baseline.StudyInstanceUID,
        baseline.SeriesInstanceUID,
        baseline.SOPInstanceUID,
        [1],
    )
    decoded = np.frombuffer(frames[0], dtype=np.uint8).reshape(128, 128)
    assert np.abs(decoded.astype(int) - original.astype(int)).mean() < 4  # lossy, but the same image


@pytest.mark.parametrize("chunk", [1, 7, 4096, 65536, 10**7])
def test_stow_parts_are_collected_whole_whatever_the_chunks(chunk):
    """The STOW-RS body arrives in chunks of any size: each part comes out byte for byte, and a part over the
    instance limit comes out as None (listed as failed 0xA700), the others kept."""
    from python_multipart.multipart import MultipartParser

    from telesante.imaging.dicomweb import _PartCollector

    parts = [bytes(range(256)) * 40, b"x" * 20_000, b"\r\n--not-the-boundary\r\n" * 3, b""]
    boundary = "b0undary"
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
            for part in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    collector = _PartCollector(max_bytes=15_000)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": collector.on_part_begin,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
        },
    )
    for start in range(0, len(body), chunk):
        parser.write(body[start : start + chunk])
    parser.finalize()
    # each part whole, or in the pieces it arrived in (joined by the parsing helper)
    assert [None if part is None else joined(part) for part in collector.done] == [
        parts[0],
        None,
        parts[2],
        parts[3],
    ]
