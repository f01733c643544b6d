"""Saving blobs inside a database transaction without leaving anything half-written.

A blob is written to the store *before* the transaction commits (the row that points at it must not commit first,
or a crash would leave a row without its file). If the transaction rolls back, the blob it wrote is deleted again
by a rollback hook (``db.after_rollback``) — unless the blob was already there, or another transaction of this
process that saved the same content is still running or has committed (keys are content-addressed, so two uploads
of one file share one blob).
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.db import after_commit, after_rollback
from telesante.storage.blobs import BlobStore, StagedFile

log = logging.getLogger(__name__)


def blob_key(data: bytes, digest: str | None = None) -> str:
    """The content address of ``data``: ``sha256/<2 hex>/<2 hex>/<64 hex>`` (two levels of 256 folders).
    ``digest``: its SHA-256 (hex) when the caller has computed it already."""
    digest = digest or hashlib.sha256(data).hexdigest()
    return f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"


@dataclass
class _Claim:
    """Transactions of this process that saved one key and have not finished yet."""

    holders: int = 0
    written: bool = False  # one of them wrote the blob (it did not exist before)
    committed: bool = False  # one of them committed: the blob is referenced, never delete it on rollback


_claims: weakref.WeakKeyDictionary[BlobStore, dict[str, _Claim]] = weakref.WeakKeyDictionary()


async def save_blob(
    session: AsyncSession, store: BlobStore, data: bytes, content_type: str, *, sha256: str | None = None
) -> str:
    """Write ``data`` now under its content address and return the key; if ``session``'s transaction rolls back,
    the blob is deleted again unless it existed before or is used by another transaction (see module doc)."""
    return (await save_blobs(session, store, [(data, content_type, sha256)]))[0]


async def save_blobs(
    session: AsyncSession,
    store: BlobStore,
    items: list[tuple[bytes, str, str | None]],
    staged: list[StagedFile | None] | None = None,
) -> list[str]:
    """``save_blob`` for several contents at once, (data, content type, SHA-256 or None) each: the store writes
    them together (``put_many_if_absent``: one worker-thread hop and one flush to disk for all of them). ``staged``:
    what the store's stager already wrote of each item (moved under its key rather than written again)."""
    keys = [blob_key(data, sha256) for data, _type, sha256 in items]
    claims = _claims.setdefault(store, {})
    held = []
    for key in keys:
        claim = claims.setdefault(key, _Claim())
        claim.holders += 1  # before any await: a concurrent saver of the same content sees this claim
        held.append(claim)
    try:
        written = await store.put_many_if_absent(
            [(key, data, content_type) for key, (data, content_type, _sha) in zip(keys, items, strict=True)],
            staged,
        )
    except BaseException:
        for key in keys:
            await _release(store, key, committed=False)
        raise
    for claim, new in zip(held, written, strict=True):
        claim.written = claim.written or new

    async def on_commit() -> None:
        for key in keys:
            await _release(store, key, committed=True)

    async def on_rollback() -> None:
        for key in keys:
            await _release(store, key, committed=False)

    after_commit(session, on_commit)
    after_rollback(session, on_rollback)
    return keys


async def _release(store: BlobStore, key: str, *, committed: bool) -> None:
    claims = _claims.get(store, {})
    claim = claims.get(key)
    if claim is None:  # pragma: no cover - every release follows a claim
        return
    claim.holders -= 1
    claim.committed = claim.committed or committed
    if claim.holders > 0:
        return
    del claims[key]
    if claim.written and not claim.committed:
        try:
            await store.delete(key)
        except Exception:  # a rollback must not fail because cleaning up did: the blob is only an orphan
            log.exception("could not delete blob %s after rollback", key)
