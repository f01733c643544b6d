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
from telesante.storage.blobs import BlobStore

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
    key = blob_key(data, sha256)
    claims = _claims.setdefault(store, {})
    claim = claims.setdefault(key, _Claim())
    claim.holders += 1  # before any await: a concurrent saver of the same content sees this claim
    try:
        if not await store.exists(key):
            await store.put(key, data, content_type)
            claim.written = True
    except BaseException:
        await _release(store, key, committed=False)
        raise

    async def on_commit() -> None:
        await _release(store, key, committed=True)

    async def on_rollback() -> None:
        await _release(store, key, committed=False)

    after_commit(session, on_commit)
    after_rollback(session, on_rollback)
    return key


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
