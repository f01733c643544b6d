"""Ingest through the service: the original bytes stored once per SOP Instance UID, the index and the DICOM JSON
without bulk data; bad files refused with a reason, nothing partial stored."""

from __future__ import annotations

import asyncio
import io

import pydicom
import pytest
import sqlalchemy as sa

from telesante.directory.models import Role
from telesante.imaging import service
from telesante.imaging.dicom import InvalidDicom, parse_instance
from telesante.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy
from telesante.kit.errors import Conflict, Forbidden, InvalidInput
from telesante.storage.blobs import FilesystemBlobStore
from tests.factories import make_actor, make_organisation


@pytest.fixture
def store(tmp_path):
    return FilesystemBlobStore(tmp_path / "blobs")


def staging_leftovers(store: FilesystemBlobStore) -> list[str]:
    folder = store.root / ".staging"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def blob_files(store: FilesystemBlobStore) -> list[str]:
    """The keys of the files stored (what lies outside the staging folder)."""
    return [
        path.relative_to(store.root).as_posix()
        for path in store.root.rglob("*")
        if path.is_file() and ".staging" not in path.parts
    ]


def in_pieces(data: bytes, pieces: int = 3) -> list[bytes]:
    """A part as the route hands it on: in the chunks it arrived in."""
    size = -(-len(data) // pieces)
    return [data[start : start + size] for start in range(0, len(data), size)]


async def count(session, model) -> int:
    return (await session.execute(sa.select(sa.func.count()).select_from(model))).scalar_one()


async def test_a_series_is_indexed_and_stored_unchanged_once(session, store, ct_series):
    hospital = await make_organisation(session, "CH de Fougères")
    files = ct_series(3)
    for data in files:
        result = await service.ingest_instance(
            session, store, data, organisation_id=hospital.id, received_from="dicom:CT_FOUGERES"
        )
        assert result.created
    again = await service.ingest_instance(
        session, store, files[0], organisation_id=hospital.id, received_from="dicom:CT_FOUGERES"
    )
    assert not again.created  # the same SOP Instance UID twice is stored once
    assert (await count(session, ImagingInstance), await count(session, ImagingSeries)) == (3, 1)
    study = (await session.execute(sa.select(ImagingStudy))).scalar_one()
    assert (study.series_count, study.instance_count, study.modalities) == (1, 3, "CT")
    assert (study.dicom_patient_id, study.accession_number, study.study_date) == (
        "IPP-0001",
        "ACC-42",
        "20261124",
    )
    assert study.attributes["00100010"]["Value"][0]["Alphabetic"] == "LE GOFF^YANN"
    instance = (
        (await session.execute(sa.select(ImagingInstance).order_by(ImagingInstance.instance_number)))
        .scalars()
        .first()
    )
    assert await store.get(instance.blob_key) == files[0]  # the original bytes, unchanged
    assert "7FE00010" not in instance.metadata_json and instance.metadata_json["00080060"]["Value"] == ["CT"]
    assert instance.transfer_syntax_uid == "1.2.840.10008.1.2.1"


async def test_bad_files_are_refused_with_a_reason(ct_series):
    good = ct_series(1)[0]
    with pytest.raises(InvalidDicom, match="DICM"):
        parse_instance(b"%PDF-1.7 pas une image" * 20)
    with pytest.raises(InvalidDicom, match="tronqué"):
        parse_instance(good[: len(good) - 5000])
    ds = pydicom.dcmread(io.BytesIO(good))
    del ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out)
    with pytest.raises(InvalidDicom, match="SOPInstanceUID"):
        parse_instance(out.getvalue())


async def test_a_refused_instance_leaves_nothing_and_a_study_stays_with_its_sender(session, store, ct_series):
    hospital = await make_organisation(session, "CH de Fougères")
    other = await make_organisation(session, "CH de Vitré")
    files = ct_series(2)
    await service.ingest_instance(session, store, files[0], organisation_id=hospital.id, received_from="stow")
    with pytest.raises(Conflict):
        await service.ingest_instance(
            session, store, files[1], organisation_id=other.id, received_from="stow"
        )
    with pytest.raises(InvalidDicom):
        await service.ingest_instance(
            session, store, b"x" * 500, organisation_id=hospital.id, received_from="stow"
        )
    assert await count(session, ImagingInstance) == 1


async def test_peers_are_declared_by_the_organisations_administrator(session):
    hospital = await make_organisation(session, "CH de Fougères")
    admin = await make_actor(session, hospital, Role.ORG_ADMIN)
    clinician = await make_actor(session, hospital, Role.REQUESTER)
    peer = await service.register_peer(session, admin.principal, hospital.id, " CT_FOUGERES ")
    assert peer.ae_title == "CT_FOUGERES"
    assert await service.peer_organisation(session, "CT_FOUGERES") == hospital.id
    with pytest.raises(Forbidden):
        await service.register_peer(session, clinician.principal, hospital.id, "IRM_FOUGERES")
    with pytest.raises(Conflict):
        await service.register_peer(session, admin.principal, hospital.id, "CT_FOUGERES")
    with pytest.raises(InvalidInput):
        await service.register_peer(session, admin.principal, hospital.id, "TROP_LONG_POUR_UN_AE")
    with pytest.raises(service.UnknownPeer):
        await service.peer_organisation(session, "INCONNU")


async def test_ingest_and_frames_through_an_s3_store(session, s3_store, ct_series):
    """The same ingest with the S3-compatible backend (moto's server): the original file stored once, and a frame
    served by a ranged read of the object."""
    from telesante.imaging.repository import ImagingRepository

    hospital = await make_organisation(session, "CH de Fougères")
    files = ct_series(2)
    for data in files:
        await service.ingest_instance(
            session, s3_store, data, organisation_id=hospital.id, received_from="stow"
        )
    ds = pydicom.dcmread(io.BytesIO(files[1]))
    locations = await ImagingRepository(session).series_frame_locations(
        ds.StudyInstanceUID, ds.SeriesInstanceUID
    )
    location = locations[ds.SOPInstanceUID]
    assert await s3_store.get(location.blob_key) == files[1]
    assert await service.read_frames(s3_store, location, [1], native=False) == [ds.PixelData]


def test_damaged_files_are_refused_never_crash(ct_series):
    """Hundreds of damaged copies (truncated, bytes changed, native and RLE): each is read, or refused as invalid
    DICOM; an image that is read either renders or is refused as undecodable — no other error escapes (a STOW-RS
    part would otherwise be a 500, a C-STORE an A700)."""
    import random
    import warnings

    from pydicom.uid import RLELossless

    from telesante.imaging import pixels

    good = ct_series(1, rows=64)[0]
    ds = pydicom.dcmread(io.BytesIO(good))
    ds.compress(RLELossless)
    out = io.BytesIO()
    ds.save_as(out)
    rng = random.Random(7)
    refused = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid values it reads
        for base in (good, out.getvalue()):
            for _ in range(150):
                data = bytearray(base)
                if rng.random() < 0.4:
                    data = data[: rng.randrange(132, len(data))]
                else:
                    for _ in range(rng.randrange(1, 8)):
                        data[rng.randrange(132, len(data))] = rng.randrange(256)
                try:
                    parsed = parse_instance(bytes(data))
                except InvalidDicom:
                    refused += 1
                    continue
                if parsed.frames:
                    try:
                        pixels.render_frame(bytes(data), 0, window=None)
                    except pixels.UndecodableImage:
                        refused += 1
    assert refused > 50  # the damage is real: many copies are refused


async def stow(
    session,
    store,
    parts,
    *,
    organisation_id,
    study_uid=None,
    parse_processes=0,
    batch=16,
    backlog=16,
    large_bytes=8 * 1024 * 1024,
):
    """The parts of one STOW-RS request through the pipeline, as the route feeds it."""
    results = service.StowResults()
    ingest = service.StowIngest(
        session,
        store,
        None,
        organisation_id=organisation_id,
        study_uid=study_uid,
        results=results,
        parse_processes=parse_processes,
        batch=batch,
        backlog=backlog,
        large_bytes=large_bytes,
    )
    try:
        for part in parts:
            await ingest.add(part)
    except BaseException:
        await ingest.abort()
        raise
    await ingest.finish()
    return results


@pytest.mark.parametrize("parse_processes", [0, 1], ids=["threads", "helper-process"])
async def test_a_stow_batch_is_indexed_together_and_a_conflict_falls_back_to_one_by_one(
    session, store, ct_series, parse_processes
):
    """STOW-RS parts are indexed in batches; a batch with an instance of another organisation's study is undone and
    stored one by one, so that each instance gets its own outcome."""
    from telesante.imaging.repository import ImagingRepository

    fougeres = await make_organisation(session, "CH de Fougères")
    vitre = await make_organisation(session, "CH de Vitré")
    theirs = ct_series(2)
    await service.ingest_instance(
        session, store, theirs[0], organisation_id=fougeres.id, received_from="stow"
    )
    ours = ct_series(3)
    results = await stow(
        session, store, [*ours, ours[0]], organisation_id=vitre.id, parse_processes=parse_processes
    )
    assert len(results.stored) == 4 and not results.failed  # a part sent twice is stored once, listed twice
    assert (await count(session, ImagingInstance), await count(session, ImagingSeries)) == (4, 2)
    results = await stow(
        session,
        store,
        [theirs[0], ours[1], theirs[1]],
        organisation_id=vitre.id,
        parse_processes=parse_processes,
    )
    assert [failure[2] for failure in results.failed] == [0x0111, 0x0111]  # Fougères' study, one by one
    assert len(results.stored) == 1  # ours[1], already stored: acknowledged
    # every part was staged by the parsing; the unused ones (duplicates, refused) are gone, each file once
    assert staging_leftovers(store) == []
    assert sorted(blob_files(store)) == sorted({service.blob_key(data) for data in [theirs[0], *ours]})
    study = await ImagingRepository(session).get_study_by_uid(
        pydicom.dcmread(io.BytesIO(ours[0])).StudyInstanceUID
    )
    assert (study.instance_count, study.series_count, study.organisation_id) == (3, 1, vitre.id)


@pytest.mark.parametrize("path", ["one by one", "stow"])
async def test_a_series_uid_equal_to_its_study_uid_is_not_taken_for_the_study(
    session, store, ct_series, path
):
    """A sender that gives a series the study's UID (against the standard, but seen): the request's cache of
    studies and series never hands the series for the study; every instance is stored under one study, one series."""
    from telesante.imaging.repository import ImagingRepository

    hospital = await make_organisation(session, "CH de Fougères")
    same = []
    for data in ct_series(3):
        dataset = pydicom.dcmread(io.BytesIO(data))
        dataset.SeriesInstanceUID = dataset.StudyInstanceUID
        out = io.BytesIO()
        dataset.save_as(out)
        same.append(out.getvalue())
    if path == "stow":
        results = await stow(session, store, same, organisation_id=hospital.id, batch=1)
        assert len(results.stored) == 3 and not results.failed
    else:
        for data in same:
            await service.ingest_instance(
                session, store, data, organisation_id=hospital.id, received_from="upload"
            )
    uid = pydicom.dcmread(io.BytesIO(same[0])).StudyInstanceUID
    study = await ImagingRepository(session).get_study_by_uid(uid)
    assert (study.instance_count, study.series_count) == (3, 1)
    assert (await count(session, ImagingSeries), await count(session, ImagingInstance)) == (1, 3)


async def test_later_batches_of_a_request_reuse_the_study_and_series_found_by_the_first(
    session, store, ct_series
):
    """A request's study and series are looked up (or made) by its first batch; the next batches take them from the
    request's cache instead of reading them again. The rows are the same either way."""
    from sqlalchemy import event

    from telesante.imaging.repository import ImagingRepository

    hospital = await make_organisation(session, "CH de Fougères")
    series = ct_series(7)
    await stow(session, store, series[:1], organisation_id=hospital.id)  # the study and series exist already
    session.info.pop(service.INGEST_CACHE, None)  # a new request
    reads: list[str] = []

    def look(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM imaging_studies" in statement:
            reads.append(statement)

    engine = session.bind.sync_engine
    event.listen(engine, "before_cursor_execute", look)
    try:
        results = await stow(
            session, store, series[1:], organisation_id=hospital.id, batch=2
        )  # three batches
    finally:
        event.remove(engine, "before_cursor_execute", look)
    assert len(results.stored) == 6 and not results.failed
    assert len(reads) == 1  # the first batch only
    study = await ImagingRepository(session).get_study_by_uid(
        pydicom.dcmread(io.BytesIO(series[0])).StudyInstanceUID
    )
    assert (study.instance_count, study.series_count) == (7, 1)


async def test_the_pipeline_keeps_each_parts_outcome_across_small_batches(session, store, ct_series):
    """Batches of 2 with one part waiting: the good parts are all stored, each bad one is listed with its reason
    (not DICOM, too large, another study than the one in the URL), whatever batch it fell in."""
    hospital = await make_organisation(session, "CH de Fougères")
    series = ct_series(5)
    other_study = ct_series(1)[0]
    study_uid = pydicom.dcmread(io.BytesIO(series[0])).StudyInstanceUID
    parts = [
        series[0],
        b"not dicom at all" * 20,
        series[1],
        None,
        series[2],
        other_study,
        series[3],
        series[4],
    ]
    results = await stow(
        session, store, parts, organisation_id=hospital.id, study_uid=study_uid, batch=2, backlog=1
    )
    assert sorted(sop for _s, _se, _c, sop in results.stored) == sorted(
        pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID for data in series
    )
    assert sorted(reason for _c, _s, reason, _m in results.failed) == [0xA700, 0xA900, 0xC000]
    assert await count(session, ImagingInstance) == 5


async def test_a_storage_failure_stops_the_request_with_its_error(session, store, ct_series, monkeypatch):
    """The consumer's error (storage down) is the request's, raised by finish() or by the next add(): the sender
    gets 503 and retries, rather than every instance listed as failed."""
    from telesante.storage.blobs import StorageUnavailable

    hospital = await make_organisation(session, "CH de Fougères")

    async def down(*args, **kwargs):
        raise StorageUnavailable("Stockage indisponible.")

    monkeypatch.setattr(store, "put_many_if_absent", down)
    with pytest.raises(StorageUnavailable):
        await stow(session, store, ct_series(6), organisation_id=hospital.id, batch=2, backlog=1)


async def test_an_aborted_request_stops_the_pipeline(session, store, ct_series):
    """The body broke off: waiting parts are dropped, the batch in progress ends, nothing is left running."""
    hospital = await make_organisation(session, "CH de Fougères")
    results = service.StowResults()
    ingest = service.StowIngest(
        session, store, None, organisation_id=hospital.id, study_uid=None, results=results, batch=4, backlog=4
    )
    for part in ct_series(3):
        await ingest.add(part)
    await ingest.abort()
    assert ingest._consumer.done()
    assert len(results.stored) <= 3 and not results.failed
    assert staging_leftovers(store) == []  # the files parsed meanwhile were staged, then removed
    await service.StowIngest(
        session, store, None, organisation_id=hospital.id, study_uid=None, results=results
    ).abort()  # nothing added: nothing to stop


async def test_a_large_instance_is_stored_on_its_own(session, store, ct_series, monkeypatch):
    """Memory stays bounded: an instance over ``large_bytes`` is stored alone, after what came before it and before
    the next part is read; the small ones around it still go in batches, and every outcome is kept."""
    hospital = await make_organisation(session, "CH de Fougères")
    small = ct_series(5, rows=64)
    large = ct_series(2)  # 512×512: over the limit below
    assert max(map(len, small)) < 100_000 < min(map(len, large))
    batches: list[list[int]] = []
    original = service.ingest_many

    async def recording(session_, store_, items, **kwargs):
        batches.append([len(data) for data, _parsed in items])
        return await original(session_, store_, items, **kwargs)

    monkeypatch.setattr(service, "ingest_many", recording)
    parts = [small[0], small[1], large[0], small[2], small[3], small[4], large[1]]
    results = await stow(
        session, store, parts, organisation_id=hospital.id, batch=4, backlog=4, large_bytes=100_000
    )
    assert len(results.stored) == 7 and not results.failed
    assert await count(session, ImagingInstance) == 7
    assert [[size > 100_000 for size in batch] for batch in batches] == [
        [False, False],
        [True],
        [False, False, False],
        [True],
    ]


def _pydicom_json(data: bytes) -> dict:
    """pydicom's own DICOM JSON of the whole dataset, without the pixel data: what the ingest memo must equal."""
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(io.BytesIO(data))
    return Dataset({tag: ds[tag] for tag in ds.keys() if tag.group != 0x7FE0}).to_json_dict(
        bulk_data_threshold=1_000_000_000
    )


def test_metadata_is_pydicoms_json_even_for_elements_already_seen(ct_series):
    """Elements repeated across a series are converted once and remembered: the JSON of every instance must stay
    what pydicom writes, whatever the character set, byte order or VR encoding (implicit VR: nothing remembered),
    with sequences and private elements, and one instance's JSON must not share objects with the next one's."""
    from pydicom.dataset import Dataset
    from pydicom.uid import ImplicitVRLittleEndian

    first, second = ct_series(2, rows=16)
    variants = []
    same_bytes_in_latin1 = "MÜLLER^JÜRGEN".encode().decode("latin-1")  # UTF-8's bytes, read as ISO 8859-1
    for charset, name in (
        ("ISO_IR 192", "MÜLLER^JÜRGEN"),
        ("ISO_IR 100", same_bytes_in_latin1),
        ("ISO_IR 100", "MÜLLER^JÜRGEN"),
        (None, "DOE^JOHN"),
    ):
        for implicit in (False, True):
            ds = pydicom.dcmread(io.BytesIO(first))
            if charset:
                ds.SpecificCharacterSet = charset
            ds.PatientName = name
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            item = Dataset()
            item.PatientID, item.IssuerOfPatientID = "1234567890123", "INS-NIR"
            ds.OtherPatientIDsSequence = [item]
            block = ds.private_block(0x0029, "TELESANTE TEST", create=True)
            block.add_new(0x01, "LO", "privé")
            if implicit:
                ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
            out = io.BytesIO()
            ds.save_as(out, implicit_vr=implicit, little_endian=True)
            variants.append(out.getvalue())
    for data in [first, second, *variants, *variants, first]:
        assert parse_instance(data).metadata == _pydicom_json(data)
    one, two = parse_instance(first).metadata, parse_instance(first).metadata
    one["00100010"]["Value"][0]["Alphabetic"] = "CHANGE^ICI"
    assert two["00100010"]["Value"][0]["Alphabetic"] == "LE GOFF^YANN"
    assert parse_instance(first).metadata["00100010"]["Value"][0]["Alphabetic"] == "LE GOFF^YANN"
    latin = parse_instance(variants[4])
    assert latin.patient_name == "MÜLLER^JÜRGEN" and latin.metadata["00080008"]["Value"] == [
        "ORIGINAL",
        "PRIMARY",
        "AXIAL",
    ]


@pytest.mark.parametrize("parse_processes", [0, 1], ids=["threads", "helper-process"])
async def test_stow_parts_are_written_once_while_the_body_arrives(
    session, store, ct_series, parse_processes, monkeypatch
):
    """Each part, in the pieces it arrived in, is joined and written (flushed) to the staging folder by its parsing;
    the batch only moves the files under their keys: it writes no bytes itself. The stored files are the bytes
    sent, and the index points at them."""
    hospital = await make_organisation(session, "CH de Fougères")

    def no_second_write(*args, **kwargs):
        raise AssertionError("the batch wrote a file that was staged")

    monkeypatch.setattr(FilesystemBlobStore, "_write_temporary", no_second_write)
    series = ct_series(4)
    results = await stow(
        session,
        store,
        [in_pieces(data) for data in series],
        organisation_id=hospital.id,
        parse_processes=parse_processes,
    )
    assert len(results.stored) == 4 and not results.failed
    rows = (await session.execute(sa.select(ImagingInstance))).scalars().all()
    assert sorted([await store.get(row.blob_key) for row in rows]) == sorted(series)
    assert staging_leftovers(store) == []
    # the DICOM JSON, stored as the helper's text, reads back as the attributes parsed here
    by_uid = {row.sop_instance_uid: row.metadata_json for row in rows}
    for data in series:
        parsed = parse_instance(data)
        assert by_uid[parsed.sop_instance_uid] == parsed.metadata


async def test_a_part_whose_staging_failed_is_written_at_its_key(
    session, store, ct_series, monkeypatch, caplog
):
    """The staging folder refuses a file (disk full for a moment): the batch writes the bytes itself, the request
    succeeds, and the failure is in the log."""
    from telesante.storage.blobs import Stager

    hospital = await make_organisation(session, "CH de Fougères")
    real = Stager.__call__
    calls = []

    def fails_once(self, data):
        calls.append(len(data))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Stager, "__call__", fails_once)
    series = ct_series(3)
    results = await stow(session, store, [in_pieces(data) for data in series], organisation_id=hospital.id)
    assert len(results.stored) == 3 and not results.failed and len(calls) == 3
    assert sorted(blob_files(store)) == sorted(service.blob_key(data) for data in series)
    for data in series:
        assert await store.get(service.blob_key(data)) == data
    assert "staging a received instance failed" in caplog.text
    assert staging_leftovers(store) == []


async def test_a_refused_part_is_never_staged(session, store, monkeypatch):
    from telesante.storage.blobs import Stager

    hospital = await make_organisation(session, "CH de Fougères")
    staged = []
    real = Stager.__call__
    monkeypatch.setattr(Stager, "__call__", lambda self, data: staged.append(data) or real(self, data))
    results = await stow(session, store, [[b"not ", b"dicom" * 100]], organisation_id=hospital.id)
    assert [failure[2] for failure in results.failed] == [0xC000] and staged == []
    assert blob_files(store) == []


async def test_a_failed_insert_waits_for_the_files_and_leaves_no_blob(session, store, ct_series, monkeypatch):
    """The rows fail to insert while the files are being moved under their keys: the files finish first (never left
    running), the request's transaction rolls back, and its rollback hooks remove the blobs the batch wrote."""
    from telesante.db import discard_changes
    from telesante.imaging.repository import ImagingRepository

    hospital = await make_organisation(session, "CH de Fougères")

    async def fails(self, rows):
        raise RuntimeError("insert failed")

    monkeypatch.setattr(ImagingRepository, "insert_instances", fails)
    with pytest.raises(RuntimeError, match="insert failed"):
        await stow(session, store, ct_series(3), organisation_id=hospital.id)
    assert len(blob_files(store)) == 3  # the files were moved under their keys before the error came out
    await discard_changes(session)  # what the request does with an error
    assert blob_files(store) == [] and staging_leftovers(store) == []


async def test_one_instance_s_file_is_written_beside_its_insert_and_rolled_back_with_it(
    session, store, ct_series, monkeypatch
):
    """A single instance (C-STORE, upload): its file is written while its row is inserted. When the insert fails the
    file's write is waited for (never left running), the insert's error comes out, and the rollback removes the file."""
    from telesante.db import discard_changes
    from telesante.imaging.repository import ImagingRepository

    hospital = await make_organisation(session, "CH de Fougères")
    data = ct_series(1)[0]

    async def fails(self, instance):
        await asyncio.sleep(0)  # the file's write has started meanwhile
        raise RuntimeError("insert failed")

    monkeypatch.setattr(ImagingRepository, "add_instance", fails)
    with pytest.raises(RuntimeError, match="insert failed"):
        await service.ingest_instance(session, store, data, organisation_id=hospital.id, received_from="stow")
    assert blob_files(store) == [service.blob_key(data)]  # finished before the error came out
    await discard_changes(session)  # what the request does with an error
    assert blob_files(store) == []


async def test_one_instance_whose_file_cannot_be_written_is_not_indexed(
    session, store, ct_series, monkeypatch
):
    from telesante.storage.blobs import StorageUnavailable

    hospital = await make_organisation(session, "CH de Fougères")

    async def storage_down(*args, **kwargs):
        raise StorageUnavailable("Stockage indisponible.")

    monkeypatch.setattr(store, "put_many_if_absent", storage_down)
    with pytest.raises(StorageUnavailable):
        await service.ingest_instance(
            session, store, ct_series(1)[0], organisation_id=hospital.id, received_from="stow"
        )
    assert blob_files(store) == []
