"""save_blob: a blob written by a transaction that rolls back does not stay behind (both engines)."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from telesante.auth.dependencies import SessionDep
from telesante.db import after_rollback, discard_changes, make_sessionmaker, run_in_transaction
from telesante.directory.models import Organisation
from telesante.kit.errors import InvalidInput
from telesante.storage.blobs import FilesystemBlobStore
from telesante.storage.dependencies import BlobStoreDep
from telesante.storage.service import blob_key, save_blob
from tests.factories import make_organisation

from .conftest import a_pdf

transaction = asynccontextmanager(run_in_transaction)


class Boom(Exception):
    pass


async def test_key_is_content_addressed_and_sharded(session, fs_store, tmp_path):
    data = a_pdf("clé")
    key = await save_blob(session, fs_store, data, "application/pdf")
    digest = __import__("hashlib").sha256(data).hexdigest()
    assert key == blob_key(data) == f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    assert (tmp_path / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest).read_bytes() == data
    assert await save_blob(session, fs_store, data, "application/pdf") == key  # same content, same blob


async def test_blob_and_row_both_vanish_on_rollback(session, store):
    """On the test's real transaction (SQLite and PostgreSQL), for both backends."""
    await session.commit()  # what the fixture set up counts as committed
    organisation = await make_organisation(session, "CH écrit puis annulé")
    key = await save_blob(session, store, a_pdf("annulé"), "application/pdf")
    assert await store.exists(key)  # written before the commit, so a committed row never lacks its blob

    await discard_changes(session)

    assert await session.get(Organisation, organisation.id) is None
    assert not await store.exists(key)


async def test_blob_stays_after_commit_and_a_later_rollback_does_not_touch_it(session, fs_store):
    key = await save_blob(session, fs_store, a_pdf("gardé"), "application/pdf")
    await session.commit()
    await make_organisation(session)
    await discard_changes(session)  # a later transaction of the same session rolls back
    assert await fs_store.get(key) == a_pdf("gardé")


async def test_a_blob_that_existed_before_is_kept(session, fs_store):
    data = a_pdf("déjà là")
    key = blob_key(data)
    await fs_store.put(key, data, "application/pdf")
    assert await save_blob(session, fs_store, data, "application/pdf") == key
    await discard_changes(session)
    assert await fs_store.get(key) == data


async def test_a_blob_shared_with_a_transaction_that_commits_is_kept(engine: AsyncEngine, fs_store):
    """Two transactions upload the same file; the one that wrote it rolls back, the other commits."""
    data = a_pdf("partagé")
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as writer:
        key = await save_blob(writer, fs_store, data, "application/pdf")
        async with transaction(sessionmaker) as other:
            assert await save_blob(other, fs_store, data, "application/pdf") == key
            await discard_changes(writer)  # the writer rolls back while the other is still running
            assert await fs_store.exists(key)
        # the other has committed
    assert await fs_store.get(key) == data


async def test_a_blob_shared_by_transactions_that_all_roll_back_is_deleted(engine: AsyncEngine, fs_store):
    data = a_pdf("abandonné deux fois")
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as writer, sessionmaker() as other:
        key = await save_blob(writer, fs_store, data, "application/pdf")
        await save_blob(other, fs_store, data, "application/pdf")
        await discard_changes(writer)
        assert await fs_store.exists(key)  # the other may still commit
        await discard_changes(other)
    assert not await fs_store.exists(key)


async def test_a_savepoint_commit_is_not_the_end_of_the_transaction(session, fs_store):
    async with session.begin_nested():
        key = await save_blob(session, fs_store, a_pdf("dans un savepoint"), "application/pdf")
    await discard_changes(session)  # the enclosing transaction rolls back
    assert not await fs_store.exists(key)


async def test_run_in_transaction_deletes_the_blob_on_error_and_keeps_it_on_commit(engine, store):
    sessionmaker = make_sessionmaker(engine)
    with pytest.raises(Boom):
        async with transaction(sessionmaker) as db:
            failed = await save_blob(db, store, a_pdf("échec"), "application/pdf")
            assert await store.exists(failed)
            raise Boom
    assert not await store.exists(failed)

    async with transaction(sessionmaker) as db:
        kept = await save_blob(db, store, a_pdf("succès"), "application/pdf")
    assert await store.exists(kept)


async def test_a_failing_rollback_hook_does_not_hide_the_error_nor_stop_the_others(engine, fs_store):
    sessionmaker = make_sessionmaker(engine)

    async def broken() -> None:
        raise OSError("disque indisponible")

    with pytest.raises(Boom):
        async with transaction(sessionmaker) as db:
            after_rollback(db, broken)
            key = await save_blob(db, fs_store, a_pdf("malgré tout"), "application/pdf")
            raise Boom
    assert not await fs_store.exists(key)


async def test_a_failed_write_releases_its_claim(session, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("un fichier, pas un dossier")
    with pytest.raises(Exception):  # noqa: B017 - StorageUnavailable, whatever the OS error was
        await save_blob(session, FilesystemBlobStore(blocked), a_pdf(), "application/pdf")
    store = FilesystemBlobStore(tmp_path / "ok")
    key = await save_blob(session, store, a_pdf(), "application/pdf")
    await discard_changes(session)
    assert not await store.exists(key)


# --- through a request: get_session, BlobStoreDep, the shared-session test harness ----------------------------


@pytest.fixture
def upload_app(app, fs_store):
    app.state.blob_store = fs_store

    async def upload(session: SessionDep, store: BlobStoreDep, fail: bool = False):
        organisation = await make_organisation(session, "CH de la requête")
        key = await save_blob(session, store, a_pdf(f"requête {fail}"), "application/pdf")
        if fail:
            raise InvalidInput("Refusé après l'écriture du fichier.", field="file")
        return {"key": key, "organisation_id": str(organisation.id)}

    app.add_api_route("/api/_test/upload", upload, methods=["GET"])
    return app


async def test_a_request_that_fails_leaves_no_blob(upload_app, client, session: AsyncSession, fs_store):
    ok = await client.get("/api/_test/upload")
    assert ok.status_code == 200
    assert await fs_store.exists(ok.json()["key"])

    failed = await client.get("/api/_test/upload", params={"fail": "true"})
    assert failed.status_code == 422
    assert failed.json()["detail"] == "Refusé après l'écriture du fichier."
    assert not await fs_store.exists(blob_key(a_pdf("requête True")))
    assert await fs_store.exists(ok.json()["key"])  # the earlier, committed request keeps its blob
