"""Upload from the browser's page (what imaging.js sends): files of a folder and zip archives, in one form post;
non-DICOM files skipped and counted, refused instances named, studies attached when their identity agrees."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pytest

from telesante.imaging.phantom import head_ct
from telesante.requests import service as request_service
from telesante.requests.schemas import RequestCreate
from tests.factories import make_patient, token_for
from tests.offers.test_forms import head_trauma_answers


@pytest.fixture
async def case(session, region, offer, app, store):
    app.state.blob_store = store
    patient = await make_patient(
        session,
        region.requester,
        birth_family_name="Le Goff",
        birth_given_names="Yann",
        birth_date=date(1950, 5, 4),
        sex="M",
    )
    request = await request_service.create_request(
        session,
        region.requester.principal,
        RequestCreate(offer_id=offer.id, patient_id=patient.id, answers=head_trauma_answers()),
    )
    return request.id


def a_zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


async def test_a_folder_and_a_zip_are_received_and_attached(session, region, client, case):
    series = head_ct(4, rows=64)
    archive = a_zip({"CD/DICOM/IM3": series[2], "CD/DICOM/IM4": series[3], "CD/LISEZMOI.TXT": b"Visionneuse"})
    files = [
        ("files", ("DICOM/IM1", series[0], "application/dicom")),
        ("files", ("DICOM/IM2", series[1][:-4000], "application/dicom")),  # truncated
        ("files", ("DICOMDIR.txt", b"pas une image", "text/plain")),
        ("files", ("cd.zip", archive, "application/zip")),
    ]
    headers = await token_for(session, region.requester)
    response = await client.post(f"/imagerie/depot?demande={case}", files=files, headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["stored"], result["ignored_count"], result["failed_count"]) == (3, 2, 1)
    assert "DICOM/IM2" in result["failed"][0] and "tronqué" in result["failed"][0]
    assert result["attached"] == ["TDM CEREBRALE SANS INJECTION du 24/11/2026"]
    page = await client.get(f"/demandes/{case}", headers=headers)
    assert "3 images" in page.text and "TDM CEREBRALE SANS INJECTION" in page.text


async def test_upload_refusals(session, region, client, case):
    headers = await token_for(session, region.requester)
    empty = await client.post(f"/imagerie/depot?demande={case}", files=[], data={"x": "1"}, headers=headers)
    assert empty.status_code == 422 and empty.json()["field"] == "files"
    broken = await client.post(
        f"/imagerie/depot?demande={case}",
        files=[("files", ("cd.zip", b"PK\x03\x04 pas une archive", "application/zip"))],
        headers=headers,
    )
    assert broken.status_code == 422 and "zip" in broken.json()["detail"]
    for who in (region.colleague, region.outsider):
        refused = await client.post(
            f"/imagerie/depot?demande={case}",
            files=[("files", ("IM1", head_ct(1, rows=64)[0], "application/dicom"))],
            headers=await token_for(session, who),
        )
        assert refused.status_code in (403, 404)
