"""FastAPI side of storage: the application's blob store (``app.state.blob_store``, made by ``create_app``) and the
response that hands a stored file to the browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from telesante.storage.blobs import BlobStore
from telesante.storage.content import content_disposition


async def get_blob_store(request: Request) -> BlobStore:  # async: no worker-thread hop (get_settings_dep)
    return request.app.state.blob_store


BlobStoreDep = Annotated[BlobStore, Depends(get_blob_store)]


def file_response(data: bytes, content_type: str, filename: str, *, inline: bool = False) -> Response:
    """A stored file (patient data): never cached, never sniffed, its name kept whatever its characters."""
    return Response(
        data,
        media_type=content_type,
        headers={
            "Content-Disposition": content_disposition(filename, inline=inline),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
