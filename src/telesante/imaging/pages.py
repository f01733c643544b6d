"""Imaging pages: the studies of a request (attach, upload a folder or a zip with a progress bar), the viewer of the
case (no separate login: the web session reaches /dicomweb), and the identity-vigilance queue."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.imaging import service
from telesante.imaging.models import MATCH_LABELS
from telesante.imaging.presets import WINDOW_PRESETS
from telesante.imaging.uploads import expand
from telesante.kit.errors import DomainError, InvalidInput
from telesante.kit.pagination import PageRequest
from telesante.patients import service as patient_service
from telesante.patients.repository import PatientCriteria
from telesante.storage.dependencies import BlobStoreDep
from telesante.web.render import redirect, render

router = APIRouter(include_in_schema=False)


def _uuid(value: object, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput("Choisissez une étude dans la liste.", field=field) from None


@router.post("/demandes/{request_id}/imagerie/joindre")
async def attach_page(request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    from telesante.requests.pages import act

    submitted = await request.form()

    async def action():
        await service.attach_study(
            session, principal, request_id, _uuid(submitted.get("study_id"), "study_id")
        )

    return await act(request, session, principal, request_id, action)


@router.post("/imagerie/depot")
async def upload_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    demande: uuid.UUID,
):
    """Files of a folder or zip archives, in batches sent by the page (XMLHttpRequest, with its progress)."""
    form = await request.form(max_files=2000, max_fields=20)
    received: list[tuple[str, bytes]] = []
    for upload in form.getlist("files"):
        if isinstance(upload, str) or not upload.filename:
            continue
        received.append((upload.filename, await upload.read(settings.dicom_max_instance_bytes + 1)))
    if not received:
        raise InvalidInput("Choisissez un dossier d'images DICOM ou une archive zip.", field="files")
    # zip archives are expanded one entry at a time, as the service stores them (never all in memory)
    files = (
        entry
        for name, data in received
        for entry in expand(
            name,
            data,
            max_entry_bytes=settings.dicom_max_instance_bytes,
            max_total_bytes=settings.dicomweb_max_upload_bytes,
        )
    )
    result = await service.upload_to_request(
        session, principal, store, demande, files, max_instance_bytes=settings.dicom_max_instance_bytes
    )
    return JSONResponse(
        {
            "stored": result.stored,
            "already": result.already,
            "ignored": result.ignored[:50],
            "ignored_count": len(result.ignored),
            "failed": result.failed[:50],
            "failed_count": len(result.failed),
            "attached": result.attached,
            "not_attached": result.not_attached,
        }
    )


def viewer_context(case: service.ViewerCase) -> dict:
    """What ``imaging/_viewer.html`` needs (the viewer page, and the stroke room beside the video)."""
    return {
        "tele_request": case.request,
        "study": case.study,
        "patient": case.patient,
        "presets": WINDOW_PRESETS,
        "presets_json": json.dumps(
            [
                {"key": k, "label": label, "center": c, "width": w, "shortcut": s}
                for k, label, c, w, s in WINDOW_PRESETS
            ]
        ),
        "MATCH_LABELS": MATCH_LABELS,
    }


@router.get("/demandes/{request_id}/imagerie/{study_uid}")
async def viewer_page(
    request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID, study_uid: str
):
    case = await service.viewer_case(session, principal, request_id, study_uid)
    response = render(request, "imaging/viewer.html", viewer_context(case))
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/imagerie/rapprochement")
async def queue_page(request: Request, session: SessionDep, principal: PrincipalDep):
    studies = await service.list_to_reconcile(session, principal)
    return render(request, "imaging/queue.html", {"studies": studies, "candidates": {}})


@router.get("/imagerie/rapprochement/{study_id}")
async def reconcile_form(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    study_id: uuid.UUID,
    nom: str = Query("", max_length=100),
):
    study = await service.study_to_reconcile(session, principal, study_id)
    family, birth = service.header_traits(study)
    criteria = PatientCriteria(family=nom or family, birth_date=None if nom else birth)
    found = await patient_service.search_patients(session, principal, criteria, PageRequest(0, 20))
    return render(
        request,
        "imaging/reconcile.html",
        {"study": study, "patients": found.items, "nom": nom or family, "errors": {}},
    )


@router.post("/imagerie/rapprochement/{study_id}")
async def reconcile_page(request: Request, session: SessionDep, principal: PrincipalDep, study_id: uuid.UUID):
    submitted = await request.form()
    try:
        await service.reconcile_study(
            session,
            principal,
            study_id,
            _uuid(submitted.get("patient_id"), "patient_id"),
            str(submitted.get("reason", "")),
        )
    except DomainError as exc:
        from telesante.db import discard_changes

        await discard_changes(session)
        study = await service.study_to_reconcile(session, principal, study_id)
        return render(
            request,
            "imaging/reconcile.html",
            {
                "study": study,
                "patients": [],
                "nom": "",
                "errors": {exc.field or "": exc.message},
                "error": exc.message,
            },
            status_code=exc.status_code if exc.status_code in (404, 409, 422) else 422,
        )
    return redirect("/imagerie/rapprochement")


# --- DICOM senders (administrators) ------------------------------------------------------------------------------


async def _peers_context(session, principal) -> dict:
    view = await service.peers_view(session, principal)
    return {"peers": view.peers, "organisations": view.organisations, "errors": {}, "values": {}}


@router.get("/imagerie/emetteurs")
async def peers_page(request: Request, session: SessionDep, principal: PrincipalDep):
    return render(request, "imaging/peers.html", await _peers_context(session, principal))


@router.post("/imagerie/emetteurs")
async def add_peer_page(request: Request, session: SessionDep, principal: PrincipalDep):
    from telesante.db import discard_changes

    submitted = await request.form()
    values = {k: str(submitted.get(k, "")) for k in ("organisation_id", "ae_title", "description")}
    try:
        organisation_id = _uuid(values["organisation_id"], "organisation_id")
        await service.register_peer(
            session, principal, organisation_id, values["ae_title"], values["description"]
        )
    except DomainError as exc:
        await discard_changes(session)
        context = await _peers_context(session, principal)
        context.update(errors={exc.field or "": exc.message}, error=exc.message, values=values)
        return render(request, "imaging/peers.html", context, status_code=exc.status_code)
    return redirect("/imagerie/emetteurs")


@router.post("/imagerie/emetteurs/{peer_id}/{action}")
async def toggle_peer_page(
    request: Request, session: SessionDep, principal: PrincipalDep, peer_id: uuid.UUID, action: str
):
    if action not in ("suspendre", "reprendre"):
        raise InvalidInput("Action inconnue.", field="action")
    await service.set_peer_active(session, principal, peer_id, action == "reprendre")
    return redirect("/imagerie/emetteurs")
