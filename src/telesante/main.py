"""create_app(): lifespan, middleware, routers — nothing else."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from telesante import __version__
from telesante.audit import pages as audit_pages
from telesante.auth import api as auth_api
from telesante.auth import pages as auth_pages
from telesante.auth.dependencies import csrf_protect
from telesante.config import Settings, get_settings
from telesante.consents import api as consents_api
from telesante.consents import pages as consents_pages
from telesante.db import Database
from telesante.directory import api as directory_api
from telesante.directory import pages as directory_pages
from telesante.fhir import api as fhir_api
from telesante.patients import api as patients_api
from telesante.patients import pages as patients_pages
from telesante.web import errors, health
from telesante.web import pages as web_pages
from telesante.web.middleware import BodyLimitMiddleware, RequestContextMiddleware

STATIC_DIR = Path(__file__).parent / "web" / "static"


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if database is None:
            await app.state.database.dispose()

    app = FastAPI(
        title="Télésanté",
        version=__version__,
        description="Plateforme régionale de télémédecine — API JSON. Authentification : Authorization: Bearer.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(csrf_protect)],
    )
    app.state.settings = settings
    app.state.database = database or Database(settings)
    app.state.secret_key = settings.effective_secret_key()

    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    for module in (auth_api, directory_api, patients_api, consents_api):
        app.include_router(module.router, prefix="/api")
    app.include_router(fhir_api.router, prefix="/fhir")
    for module in (web_pages, auth_pages, directory_pages, patients_pages, consents_pages, audit_pages):
        app.include_router(module.router)
    return app
