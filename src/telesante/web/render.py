"""Template rendering shared by every pages.py: layout context, CSRF cookie, French formats."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader

from telesante.auth import security
from telesante.auth.dependencies import CSRF_COOKIE, CSRF_FIELD
from telesante.consents.models import ACT_CODES, DATA_PROCESSING_CODES, SCOPE_TYPE_LABELS
from telesante.directory.models import (
    ORGANISATION_TYPE_LABELS,
    PROFESSION_LABELS,
    ROLE_LABELS,
    SERVICE_TYPE_LABELS,
)
from telesante.kit import clock
from telesante.patients.models import EVIDENCE_LABELS, IDENTITY_STATUS_LABELS, SEX_LABELS

_ROOT = Path(__file__).resolve().parent.parent
_template_dirs = [_ROOT / "web" / "templates"] + sorted(
    p for p in _ROOT.glob("*/templates") if "web" not in p.parts[-2:]
)

templates = Jinja2Templates(directory=str(_ROOT / "web" / "templates"))
templates.env.loader = ChoiceLoader([FileSystemLoader(str(d)) for d in _template_dirs])
templates.env.filters["paris"] = clock.format_paris
templates.env.filters["paris_s"] = lambda v: clock.format_paris(v, with_seconds=True)
# for <input type="datetime-local">: Paris wall time, to the minute
templates.env.filters["paris_iso"] = lambda v: clock.to_paris(v).strftime("%Y-%m-%dT%H:%M") if v else ""
templates.env.filters["date_fr"] = lambda d: d.strftime("%d/%m/%Y") if d else ""
templates.env.globals.update(
    ORGANISATION_TYPE_LABELS=ORGANISATION_TYPE_LABELS,
    SERVICE_TYPE_LABELS=SERVICE_TYPE_LABELS,
    PROFESSION_LABELS=PROFESSION_LABELS,
    ROLE_LABELS=ROLE_LABELS,
    SEX_LABELS=SEX_LABELS,
    IDENTITY_STATUS_LABELS=IDENTITY_STATUS_LABELS,
    EVIDENCE_LABELS=EVIDENCE_LABELS,
    SCOPE_TYPE_LABELS=SCOPE_TYPE_LABELS,
    ACT_CODES=ACT_CODES,
    DATA_PROCESSING_CODES=DATA_PROCESSING_CODES,
)


def _csrf_cookie(request: Request) -> tuple[str, bool]:
    value = request.cookies.get(CSRF_COOKIE)
    if value and 20 <= len(value) <= 100:
        return value, False
    return secrets.token_urlsafe(32), True


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page with the layout context (principal, CSRF token, demo banner)."""
    cookie_value, is_new = _csrf_cookie(request)
    ctx = {
        "request": request,
        "principal": getattr(request.state, "principal", None),
        "csrf_field": CSRF_FIELD,
        "csrf_token": security.csrf_token_for(request.app.state.secret_key, cookie_value),
        "demo": request.app.state.settings.demo,
        "now": clock.now(),
    }
    ctx.update(context or {})
    response = templates.TemplateResponse(request, template, ctx, status_code=status_code)
    if is_new:
        set_cookie(request, response, CSRF_COOKIE, cookie_value, max_age=None)
    return response


def set_cookie(request: Request, response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=request.app.state.settings.cookie_secure,
        samesite="strict" if name == CSRF_COOKIE else "lax",
        path="/",
    )


def redirect(url: str, status_code: int = 303) -> RedirectResponse:
    return RedirectResponse(url, status_code=status_code)


def form_error(
    request: Request,
    template: str,
    context: dict[str, Any],
    message: str,
    field: str | None = None,
    status_code: int = 422,
) -> HTMLResponse:
    """Re-render a form with its error; the request's transaction is rolled back (nothing half-written)."""
    request.state.rollback_only = True
    return render(
        request, template, {**context, "error": message, "error_field": field}, status_code=status_code
    )
