"""create_app(): lifespan, middleware, routers — nothing else."""

from __future__ import annotations

import functools
import inspect
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
from telesante.events import api as events_api
from telesante.events.bus import make_event_bus
from telesante.events.service import EventBusMiddleware, bind_event_bus, unbind_event_bus
from telesante.fhir import api as fhir_api
from telesante.imaging import dicomweb, fastpath, parsing
from telesante.imaging import pages as imaging_pages
from telesante.imaging.fastpath import FrameFastPath
from telesante.jobs.runner import JobRunner
from telesante.kit import runtime
from telesante.monitoring import api as monitoring_api
from telesante.monitoring import pages as monitoring_pages
from telesante.offers import api as offers_api
from telesante.offers import pages as offers_pages
from telesante.oncall import api as oncall_api
from telesante.oncall import pages as oncall_pages
from telesante.patients import api as patients_api
from telesante.patients import pages as patients_pages
from telesante.requests import api as requests_api
from telesante.requests import pages as requests_pages
from telesante.scheduling import api as scheduling_api
from telesante.scheduling import pages as scheduling_pages
from telesante.storage.blobs import make_blob_store
from telesante.stroke import api as stroke_api
from telesante.stroke import pages as stroke_pages
from telesante.teleradiology import pages as teleradiology_pages
from telesante.video import pages as video_pages
from telesante.video.signalling import SignallingHub
from telesante.web import errors, health, zerocopy
from telesante.web import pages as web_pages
from telesante.web.middleware import BodyLimitMiddleware, RequestContextMiddleware

STATIC_DIR = Path(__file__).parent / "web" / "static"


def _telemetry(settings: Settings) -> dict:
    """Recent FastAPI (0.165 here) looks for a configured OpenTelemetry SDK at every request (environment look-ups): only when
    TELESANTE_OPENTELEMETRY asks for it."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    wanted = settings.opentelemetry
    return {"telemetry": {"tracing": wanted, "metrics": wanted, "logs": wanted}}


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if database is None:
            app.state.database.start()  # on SQLite, the write-ahead log's checkpoints in the background
        await app.state.event_bus.start()
        bind_event_bus(app.state.event_bus)  # background jobs publish on it too
        if app.state.video_relay is not None:
            await app.state.video_relay.start()
        runner = None
        if settings.jobs_enabled:
            runner = JobRunner(
                app.state.database.sessionmaker,
                settings.jobs_poll_seconds,
                lease_seconds=settings.jobs_lease_seconds,
            )
            await runner.start()
        listener = None
        if settings.dicom_port:
            from telesante.imaging.listener import DicomListener

            listener = DicomListener(settings, app.state.database.sessionmaker, app.state.blob_store)
            await listener.start()
        app.state.dicom_listener = listener
        # The next frames of a study the viewer was just allowed to read, sent by the kernel (web/zerocopy.py).
        stop_early_answers = zerocopy.answer_early(
            app, functools.partial(fastpath.early_answer, app.state.blob_store)
        )
        # STOW-RS bodies (a whole study in one request) written by the kernel straight into the chunks received
        stop_direct_bodies = zerocopy.read_bodies_directly(app, dicomweb.is_stow_request)
        if settings.gc_freeze:
            runtime.tune_garbage_collector()  # last: everything loaded at start-up is frozen
        yield
        stop_early_answers()
        stop_direct_bodies()
        if listener is not None:
            await listener.stop()
        await parsing.aclose()
        if runner is not None:
            await runner.stop()
        if app.state.video_relay is not None:
            await app.state.video_relay.stop()
        unbind_event_bus(app.state.event_bus)
        await app.state.event_bus.stop()
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
        **_telemetry(settings),
    )
    app.state.settings = settings
    app.state.database = database or Database(settings)
    app.state.secret_key = settings.effective_secret_key()
    app.state.event_bus = make_event_bus(settings)
    app.state.blob_store = make_blob_store(settings)
    app.state.video_hub = SignallingHub(
        settings.video_max_participants,
        journal=video_pages.journal_for(app.state.database.sessionmaker),
        history=video_pages.history_for(app.state.database.sessionmaker),
    )
    app.state.video_relay = None
    if settings.redis_url is not None:  # several instances: each call served by one (video/relay.py)
        from telesante.video.relay import VideoRelay

        app.state.video_relay = VideoRelay(
            settings.redis_url.get_secret_value(), app.state.video_hub, prefix=settings.events_redis_channel
        )

    errors.install(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.max_attachment_bytes + 64 * 1024,  # the file plus its multipart envelope
        # FHIR creations carry their documents in base64 (4/3 of the bytes), within a JSON resource.
        path_limits=dict.fromkeys(
            ("/fhir", "/fhir/ServiceRequest"), settings.max_attachment_bytes * 4 // 3 + 1_048_576
        ),
        prefix_limits={
            "/dicomweb/studies": settings.dicomweb_max_upload_bytes,
            "/imagerie/depot": settings.dicomweb_max_upload_bytes,
        },
    )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(EventBusMiddleware)
    # Outermost: the viewer's next frames of a study it was just allowed to read (imaging/fastpath.py).
    app.add_middleware(FrameFastPath)
    if settings.dicomweb_cors_origin_list:  # a viewer on another origin (OHIF), bearer token only
        app.add_middleware(dicomweb.DicomwebCors, origins=settings.dicomweb_cors_origin_list)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # DICOMweb first: a viewer sends hundreds of requests in a row, and routes are matched in order.
    app.include_router(dicomweb.router)
    app.include_router(health.router)
    for module in (
        auth_api,
        directory_api,
        patients_api,
        consents_api,
        offers_api,
        requests_api,
        oncall_api,
        scheduling_api,
        stroke_api,
        monitoring_api,
    ):
        app.include_router(module.router, prefix="/api")
    app.include_router(fhir_api.router, prefix="/fhir")
    app.include_router(events_api.router)
    for module in (
        web_pages,
        auth_pages,
        directory_pages,
        patients_pages,
        consents_pages,
        audit_pages,
        offers_pages,
        requests_pages,
        imaging_pages,
        teleradiology_pages,
        oncall_pages,
        scheduling_pages,
        video_pages,
        stroke_pages,
        monitoring_pages,
    ):
        app.include_router(module.router)
    return app
