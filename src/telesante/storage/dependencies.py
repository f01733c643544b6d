"""FastAPI dependency: the application's blob store (``app.state.blob_store``, made by ``create_app``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from telesante.storage.blobs import BlobStore


def get_blob_store(request: Request) -> BlobStore:
    return request.app.state.blob_store


BlobStoreDep = Annotated[BlobStore, Depends(get_blob_store)]
