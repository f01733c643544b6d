"""The DICOM listener started with the platform, with DCMTK from Debian as the peer: echoscu, and storescu sending a
whole study over one association; an unknown calling AE is rejected at association time and nothing is stored; a
peer removed after the association list was read is still refused per instance (0124)."""

from __future__ import annotations

import asyncio
import shutil
import socket

import pytest
import sqlalchemy as sa

from telesante.directory.models import Role
from telesante.imaging import service
from telesante.imaging.models import ImagingInstance, ImagingStudy
from telesante.main import create_app
from tests.conftest import _TestDatabase
from tests.events.conftest import serving
from tests.factories import make_actor, make_organisation


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def dcmtk(*args: str) -> tuple[int, str]:
    tool = args[0]
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} manquant : apt-get install dcmtk (.ci/run le fait)", pytrace=False)
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return process.returncode, output.decode(errors="replace")


@pytest.fixture
async def listening(session, engine, settings, tmp_path):
    hospital = await make_organisation(session, "CH de Fougères")
    admin = await make_actor(session, hospital, Role.ORG_ADMIN)
    await service.register_peer(session, admin.principal, hospital.id, "CT_FOUGERES")
    # No timer loop: the served app shares the test's one session (see tests/events/conftest.py).
    configured = settings.model_copy(
        update={"dicom_port": free_port(), "dicom_host": "127.0.0.1", "jobs_enabled": False}
    )
    app = create_app(configured, database=_TestDatabase(session, engine))
    async with serving(app):
        assert app.state.dicom_listener.port == configured.dicom_port
        yield configured.dicom_port


async def test_echoscu_and_storescu_send_a_study_over_one_association(
    session, listening, ct_series, tmp_path
):
    port = str(listening)
    code, output = await dcmtk("echoscu", "-aet", "CT_FOUGERES", "-aec", "TELESANTE", "127.0.0.1", port)
    assert code == 0, output
    folder = tmp_path / "etude"
    folder.mkdir()
    files = ct_series(5)
    for number, data in enumerate(files, start=1):
        (folder / f"IM{number:04d}.dcm").write_bytes(data)
    code, output = await dcmtk(
        "storescu", "-v", "-aet", "CT_FOUGERES", "-aec", "TELESANTE", "+sd", "127.0.0.1", port, str(folder)
    )
    assert code == 0, output
    assert output.count("Requesting Association") == 1  # one association for the whole study
    stored = (await session.execute(sa.select(ImagingInstance))).scalars().all()
    assert len(stored) == 5 and {i.received_from for i in stored} == {"dicom:CT_FOUGERES"}
    study = (await session.execute(sa.select(ImagingStudy))).scalar_one()
    assert study.instance_count == 5
    # Sent again (a PACS retrying): accepted, still stored once.
    code, output = await dcmtk(
        "storescu", "-aet", "CT_FOUGERES", "-aec", "TELESANTE", "+sd", "127.0.0.1", port, str(folder)
    )
    assert code == 0, output
    assert len((await session.execute(sa.select(ImagingInstance))).scalars().all()) == 5


async def test_an_unknown_calling_ae_is_refused_and_nothing_is_stored(
    session, listening, ct_series, tmp_path
):
    path = tmp_path / "IM0001.dcm"
    path.write_bytes(ct_series(1)[0])
    code, output = await dcmtk(
        "storescu", "-v", "-aet", "INCONNU", "-aec", "TELESANTE", "127.0.0.1", str(listening), str(path)
    )
    # rejected at association time: A-ASSOCIATE-RJ, permanent, "calling AE title not recognised" (PS3.8 9.3.4)
    assert code != 0 and "Association Rejected" in output and "Calling AE Title Not Recognized" in output, (
        output
    )
    assert (await session.execute(sa.select(sa.func.count()).select_from(ImagingInstance))).scalar_one() == 0
    # The listener keeps serving: a known peer still gets through.
    code, output = await dcmtk(
        "echoscu", "-aet", "CT_FOUGERES", "-aec", "TELESANTE", "127.0.0.1", str(listening)
    )
    assert code == 0, output


async def test_a_peer_deactivated_since_the_last_refresh_is_refused_per_instance(
    session, listening, ct_series, tmp_path
):
    from telesante.imaging.models import DicomPeer

    peer = (
        await session.execute(sa.select(DicomPeer).where(DicomPeer.ae_title == "CT_FOUGERES"))
    ).scalar_one()
    peer.active = False  # the listener's list still has it until its next refresh
    await session.flush()
    path = tmp_path / "IM0001.dcm"
    path.write_bytes(ct_series(1)[0])
    code, output = await dcmtk(
        "storescu", "-v", "-aet", "CT_FOUGERES", "-aec", "TELESANTE", "127.0.0.1", str(listening), str(path)
    )
    assert "Status: 0x124" in output, (
        output
    )  # 0124H "Refused: Not Authorized" (PS3.7 C.4; DCMTK 3.6.7 names it not)
    assert (await session.execute(sa.select(sa.func.count()).select_from(ImagingInstance))).scalar_one() == 0


def _send_with_pynetdicom(port: int, calling: str, datasets: list) -> list[int]:
    """pynetdicom as the sending modality (storescu refuses to send what DCMTK cannot read): one association, each
    dataset in turn; the statuses received."""
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage

    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="TELESANTE")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(dataset).Status) for dataset in datasets]
    finally:
        assoc.release()


def _short_pixels(data: bytes):
    """The slice with half its pixel data: a consistent file whose image is incomplete (a modality's bug)."""
    import io

    import pydicom

    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset.PixelData = dataset.PixelData[: len(dataset.PixelData) // 2]
    return dataset


async def test_an_instance_that_cannot_be_understood_gets_c000_and_the_association_goes_on(
    session, listening, ct_series
):
    import io

    import pydicom

    good, bad = ct_series(2)
    statuses = await asyncio.to_thread(
        _send_with_pynetdicom,
        listening,
        "CT_FOUGERES",
        [_short_pixels(bad), pydicom.dcmread(io.BytesIO(good))],
    )
    assert statuses == [0xC000, 0x0000]  # refused ("cannot understand"), then the next one stored
    stored = (await session.execute(sa.select(ImagingInstance))).scalars().all()
    assert [instance.sop_instance_uid for instance in stored] == [
        pydicom.dcmread(io.BytesIO(good)).SOPInstanceUID
    ]


async def test_a_deactivated_peer_learns_nothing_of_its_instance_but_the_refusal(
    session, listening, ct_series
):
    """The peer is checked before the instance's own fault is told: 0124, not C000."""
    from telesante.imaging.models import DicomPeer

    peer = (
        await session.execute(sa.select(DicomPeer).where(DicomPeer.ae_title == "CT_FOUGERES"))
    ).scalar_one()
    peer.active = False
    await session.flush()
    statuses = await asyncio.to_thread(
        _send_with_pynetdicom, listening, "CT_FOUGERES", [_short_pixels(ct_series(1)[0])]
    )
    assert statuses == [0x0124]
    assert (await session.execute(sa.select(sa.func.count()).select_from(ImagingInstance))).scalar_one() == 0
