from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from telesante.db import READ_ONLY

router = APIRouter(tags=["santé du service"])


class EngineStatus(BaseModel):
    status: str
    engine: str
    detail: str = ""


class Health(BaseModel):
    status: str
    version: str
    database: EngineStatus


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(request: Request) -> JSONResponse:
    """État du service et de chacun de ses moteurs (base de données pour l'instant)."""
    from telesante import __version__

    database = request.app.state.database
    try:
        async with database.engine.connect() as connection:
            connection = await connection.execution_options(**{READ_ONLY: True})
            await connection.execute(sa.text("SELECT 1"))
        db = EngineStatus(status="ok", engine=database.engine.dialect.name)
    except Exception as exc:  # noqa: BLE001 - health must report, not raise
        db = EngineStatus(status="error", engine=database.engine.dialect.name, detail=type(exc).__name__)
    body = Health(status="ok" if db.status == "ok" else "degraded", version=__version__, database=db)
    return JSONResponse(body.model_dump(), status_code=200 if db.status == "ok" else 503)
