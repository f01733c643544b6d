from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from telesante.auth import service
from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.auth.schemas import (
    AccountActive,
    AccountCreate,
    AccountRead,
    ApiTokenRead,
    GrantRead,
    MeRead,
    PasswordReset,
)
from telesante.kit.pagination import Offset, PageOut, PageRequest

router = APIRouter(tags=["comptes"])


@router.get("/me", response_model=MeRead)
async def me(principal: PrincipalDep):
    """L'utilisateur authentifié et ses rôles."""
    return MeRead(
        account_id=principal.account_id,
        email=principal.email,
        professional_id=principal.professional_id,
        display_name=principal.display_name,
        auth_method=principal.auth_method,
        grants=[
            GrantRead(role=g.role, organisation_id=g.organisation_id, organisation_name=g.organisation_name)
            for g in principal.grants
        ],
    )


@router.get("/tokens", response_model=list[ApiTokenRead])
async def list_tokens(session: SessionDep, principal: PrincipalDep):
    return await service.list_api_tokens(session, principal)


@router.post("/tokens/{token_id}/revoke", response_model=ApiTokenRead)
async def revoke_token(session: SessionDep, principal: PrincipalDep, token_id: uuid.UUID):
    return await service.revoke_api_token(session, token_id, principal)


@router.get("/accounts", response_model=PageOut[AccountRead])
async def list_accounts(
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(max_length=100)] = "",
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
):
    page = await service.list_accounts(session, principal, PageRequest(offset, limit), q)
    return PageOut(items=page.items, total=page.total, offset=page.offset, limit=page.limit)


@router.post("/accounts", response_model=AccountRead, status_code=status.HTTP_201_CREATED)
async def create_account(session: SessionDep, principal: PrincipalDep, data: AccountCreate):
    return await service.create_account(
        session,
        principal,
        professional_id=data.professional_id,
        email=str(data.email),
        password=data.password,
    )


@router.post("/accounts/{account_id}/reset-password", response_model=AccountRead)
async def reset_password(
    session: SessionDep, principal: PrincipalDep, account_id: uuid.UUID, data: PasswordReset
):
    """Réinitialisation par un administrateur : mot de passe provisoire, sessions fermées, verrou levé."""
    return await service.reset_password(
        session, principal, account_id, data.temporary_password, reset_totp=data.reset_totp
    )


@router.post("/accounts/{account_id}/active", response_model=AccountRead)
async def set_active(
    session: SessionDep, principal: PrincipalDep, account_id: uuid.UUID, data: AccountActive
):
    return await service.set_account_active(session, principal, account_id, data.active)
