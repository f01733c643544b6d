"""One place turns every error into the right shape: problem+json (API), OperationOutcome (FHIR), or an
HTML page / redirect (web). Users never see a stack trace."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from telesante.kit import context
from telesante.kit.errors import Conflict, DomainError, NotAuthenticated
from telesante.kit.schemas import errors_to_fields

log = logging.getLogger("telesante")

_HTTP_TITLES = {
    400: "Requête invalide",
    401: "Authentification requise",
    403: "Accès refusé",
    404: "Introuvable",
    405: "Méthode non autorisée",
    406: "Format non acceptable",
    409: "Conflit",
    413: "Requête trop volumineuse",
    415: "Type de contenu non pris en charge",
    422: "Données invalides",
    429: "Trop de requêtes",
    500: "Erreur interne",
}
_FHIR_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    500: "exception",
}


def _kind(request: Request) -> str:
    path = request.url.path
    if path.startswith("/fhir"):
        return "fhir"
    if path.startswith(("/api", "/dicomweb", "/imagerie/depot")) or path in ("/healthz", "/openapi.json"):
        return "api"
    return "html"


def _problem(status: int, title: str, detail: str, extra: dict[str, Any] | None = None) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": context.current().request_id,
    }
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def operation_outcome(status: int, detail: str, expression: str | None = None) -> JSONResponse:
    issue: dict[str, Any] = {
        "severity": "error" if status < 500 else "fatal",
        "code": _FHIR_CODES.get(status, "processing"),
        "diagnostics": detail,
    }
    if expression:
        issue["expression"] = [expression]
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": [issue]},
        status_code=status,
        media_type="application/fhir+json",
    )


def _html(request: Request, status: int, title: str, detail: str) -> Response:
    from telesante.web.render import render

    return render(
        request, "error.html", {"title": title, "detail": detail, "status": status}, status_code=status
    )


async def handle_domain_error(request: Request, exc: DomainError) -> Response:
    kind = _kind(request)
    if kind == "fhir":
        return operation_outcome(exc.status_code, exc.message, exc.field)
    if kind == "api":
        extra: dict[str, Any] = {"code": exc.code}
        if exc.field:
            extra["field"] = exc.field
        extra.update(exc.extra)
        response = _problem(exc.status_code, exc.title, exc.message, extra)
        if isinstance(exc, NotAuthenticated):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if isinstance(exc, NotAuthenticated):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/connexion?suite={quote(target)}", status_code=303)
    return _html(request, exc.status_code, exc.title, exc.message)


async def handle_validation_error(request: Request, exc: RequestValidationError) -> Response:
    fields = errors_to_fields(list(exc.errors()))
    first = fields[0] if fields else {"field": "corps", "message": "requête invalide"}
    detail = f"{first['field']} : {first['message']}"
    kind = _kind(request)
    if kind == "fhir":
        return operation_outcome(400, detail, first["field"])
    if kind == "api":
        return _problem(
            422,
            "Données invalides",
            detail,
            {"code": "donnees-invalides", "field": first["field"], "errors": fields},
        )
    return _html(request, 422, "Données invalides", detail)


async def handle_http_error(request: Request, exc: StarletteHTTPException) -> Response:
    status = exc.status_code
    title = _HTTP_TITLES.get(status, "Erreur")
    detail = (
        exc.detail
        if isinstance(exc.detail, str) and exc.detail not in ("Not Found", "Method Not Allowed")
        else title
    )
    kind = _kind(request)
    if kind == "fhir":
        response: Response = operation_outcome(status, detail)
    elif kind == "api":
        response = _problem(status, title, detail)
    else:
        response = _html(request, status, title, detail)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def handle_integrity_error(request: Request, exc: IntegrityError) -> Response:
    """A uniqueness race lost to a concurrent request (the checks before it passed): a conflict, not a crash."""
    log.warning("Conflit d'intégrité (requête %s) : %s", context.current().request_id, str(exc.orig)[:200])
    return await handle_domain_error(
        request,
        Conflict("Cette donnée vient d'être enregistrée par ailleurs : rechargez la page et vérifiez."),
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("Erreur non gérée (requête %s)", context.current().request_id)
    detail = f"Une erreur inattendue s'est produite. Référence : {context.current().request_id}."
    kind = _kind(request)
    if kind == "fhir":
        return operation_outcome(500, detail)
    if kind == "api":
        return _problem(500, "Erreur interne", detail)
    return Response(
        f"<!doctype html><html lang='fr'><title>Erreur</title><p>{detail}</p></html>",
        status_code=500,
        media_type="text/html",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, handle_domain_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(IntegrityError, handle_integrity_error)
    app.add_exception_handler(Exception, handle_unexpected)
