"""Login (password, TOTP, enrolment), password change, logout, account administration pages."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request

from telesante.auth import service
from telesante.auth.dependencies import (
    SESSION_COOKIE,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    current_web_session,
)
from telesante.auth.models import WebSession
from telesante.directory import service as directory_service
from telesante.kit.errors import DomainError, NotAuthenticated
from telesante.kit.pagination import PageRequest
from telesante.web.render import form_error, redirect, render, set_cookie

router = APIRouter(include_in_schema=False)

WebSessionDep = Annotated[WebSession | None, Depends(current_web_session)]


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _client(request: Request) -> tuple[str, str]:
    return (
        request.client.host if request.client else "inconnue",
        request.headers.get("user-agent", "")[:300],
    )


@router.get("/connexion")
async def login_form(request: Request, suite: Annotated[str, Query(max_length=500)] = "/"):
    return render(request, "auth/login.html", {"suite": _safe_next(suite)})


@router.post("/connexion")
async def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    suite: Annotated[str, Form(max_length=500)] = "/",
):
    ip, user_agent = _client(request)
    outcome = await service.login(
        session, settings, email=email, password=password, ip=ip, user_agent=user_agent
    )
    if not outcome.ok:
        # Not rolled back: the failed attempt must be counted (throttling, lockout).
        return render(
            request,
            "auth/login.html",
            {"suite": _safe_next(suite), "email": email, "error": outcome.error},
            status_code=401,
        )
    target = {
        "totp": "/connexion/code",
        "totp_enrol": "/connexion/activation-2fa",
        "change_password": "/mot-de-passe",
    }.get(outcome.next_step or "", _safe_next(suite))
    response = redirect(target)
    set_cookie(
        request, response, SESSION_COOKIE, outcome.session_token or "", max_age=settings.session_hours * 3600
    )
    return response


def _pending(web_session: WebSession | None) -> WebSession:
    if web_session is None:
        raise NotAuthenticated()
    return web_session


@router.get("/connexion/code")
async def totp_form(request: Request, web_session: WebSessionDep):
    _pending(web_session)
    return render(request, "auth/totp.html")


@router.post("/connexion/code")
async def totp_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    web_session: WebSessionDep,
    code: Annotated[str, Form(max_length=10)] = "",
):
    pending = _pending(web_session)
    error = await service.verify_totp(session, settings, pending, code)
    if error:
        return render(request, "auth/totp.html", {"error": error}, status_code=401)
    account = await service.get_session_account(session, pending)
    return redirect("/mot-de-passe" if account.must_change_password else "/")


@router.get("/connexion/activation-2fa")
async def totp_enrol_form(request: Request, session: SessionDep, web_session: WebSessionDep):
    secret, uri = await service.begin_totp_enrolment(session, _pending(web_session))
    return render(request, "auth/totp_enrol.html", {"secret": secret, "uri": uri})


@router.post("/connexion/activation-2fa")
async def totp_enrol_submit(
    request: Request,
    session: SessionDep,
    web_session: WebSessionDep,
    code: Annotated[str, Form(max_length=10)] = "",
):
    pending = _pending(web_session)
    error = await service.confirm_totp_enrolment(session, pending, code)
    if error:
        secret, uri = await service.begin_totp_enrolment(session, pending)
        return render(
            request, "auth/totp_enrol.html", {"secret": secret, "uri": uri, "error": error}, status_code=422
        )
    account = await service.get_session_account(session, pending)
    return redirect("/mot-de-passe" if account.must_change_password else "/")


@router.get("/mot-de-passe")
async def password_form(request: Request, web_session: WebSessionDep):
    if web_session is None or not web_session.mfa_passed:
        raise NotAuthenticated()
    return render(request, "auth/password.html")


@router.post("/mot-de-passe")
async def password_submit(
    request: Request,
    session: SessionDep,
    web_session: WebSessionDep,
    current_password: Annotated[str, Form(max_length=256)] = "",
    new_password: Annotated[str, Form(max_length=256)] = "",
    confirm_password: Annotated[str, Form(max_length=256)] = "",
):
    if web_session is None or not web_session.mfa_passed:
        raise NotAuthenticated()
    if new_password != confirm_password:
        return form_error(
            request,
            "auth/password.html",
            {},
            "Les deux saisies du nouveau mot de passe diffèrent.",
            "confirm_password",
        )
    error = await service.change_own_password(session, web_session, current_password, new_password)
    if error:
        return form_error(request, "auth/password.html", {}, error, "new_password")
    response = redirect("/connexion?modifie=1")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/deconnexion")
async def logout(session: SessionDep, web_session: WebSessionDep):
    if web_session is not None:
        await service.logout(session, web_session)
    response = redirect("/connexion")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- my API tokens ----------------------------------------------------------------------------------------


@router.get("/compte/jetons")
async def my_tokens(request: Request, session: SessionDep, principal: PrincipalDep):
    tokens = await service.list_api_tokens(session, principal)
    return render(request, "auth/tokens.html", {"tokens": tokens})


@router.post("/compte/jetons/{token_id}/revoquer")
async def revoke_my_token(session: SessionDep, principal: PrincipalDep, token_id: uuid.UUID):
    await service.revoke_api_token(session, token_id, principal)
    return redirect("/compte/jetons")


# --- account administration -------------------------------------------------------------------------------


@router.get("/admin/comptes")
async def accounts(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
):
    page = await service.list_accounts(session, principal, PageRequest(offset, 25), q)
    return render(request, "auth/accounts.html", {"page": page, "q": q})


async def _new_account_context(session, principal, q: str) -> dict:
    service.require_admin(principal)
    organisation_id = None
    if not principal.is_regional_admin:
        organisation_id = next(iter(principal.admin_organisation_ids()), None)
    professionals = await directory_service.list_professionals(
        session, PageRequest(0, 100), query=q, organisation_id=organisation_id
    )
    return {"professionals": professionals.items, "q": q}


@router.get("/admin/comptes/nouveau")
async def new_account_form(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(max_length=100)] = "",
):
    return render(request, "auth/account_new.html", await _new_account_context(session, principal, q))


@router.post("/admin/comptes/nouveau")
async def new_account(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    professional_id: Annotated[str, Form(max_length=64)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
):
    context = await _new_account_context(session, principal, "")
    context.update({"email": email, "professional_id": professional_id})
    try:
        try:
            pro_id = uuid.UUID(professional_id)
        except ValueError:
            return form_error(
                request, "auth/account_new.html", context, "Choisissez un professionnel.", "professional_id"
            )
        account = await service.create_account(
            session, principal, professional_id=pro_id, email=email, password=password
        )
    except DomainError as exc:
        return form_error(request, "auth/account_new.html", context, exc.message, exc.field)
    return redirect(f"/admin/comptes/{account.id}?cree=1")


@router.get("/admin/comptes/{account_id}")
async def account_detail(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    account_id: uuid.UUID,
    cree: str = "",
    reinit: str = "",
):
    account = await service.get_account(session, principal, account_id)
    message = (
        "Compte créé : le mot de passe provisoire devra être changé à la première connexion."
        if cree
        else ("Mot de passe réinitialisé ; les sessions ouvertes ont été fermées." if reinit else None)
    )
    return render(request, "auth/account_detail.html", {"account": account, "message": message})


@router.post("/admin/comptes/{account_id}/reinitialiser")
async def account_reset(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    account_id: uuid.UUID,
    temporary_password: Annotated[str, Form(max_length=256)] = "",
    reset_totp: Annotated[bool, Form()] = False,
):
    try:
        await service.reset_password(
            session, principal, account_id, temporary_password, reset_totp=reset_totp
        )
    except DomainError as exc:
        account = await service.get_account(session, principal, account_id)
        return form_error(request, "auth/account_detail.html", {"account": account}, exc.message, exc.field)
    return redirect(f"/admin/comptes/{account_id}?reinit=1")


@router.post("/admin/comptes/{account_id}/activation")
async def account_active(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    account_id: uuid.UUID,
    active: Annotated[bool, Form()] = False,
):
    try:
        await service.set_account_active(session, principal, account_id, active)
    except DomainError as exc:
        account = await service.get_account(session, principal, account_id)
        return form_error(request, "auth/account_detail.html", {"account": account}, exc.message, exc.field)
    return redirect(f"/admin/comptes/{account_id}")
