from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import EmailStr, Field

from telesante.directory.models import Role
from telesante.kit.schemas import InputModel, ReadModel


class GrantRead(ReadModel):
    role: Role
    organisation_id: uuid.UUID | None
    organisation_name: str


class MeRead(ReadModel):
    account_id: uuid.UUID
    email: str
    professional_id: uuid.UUID
    display_name: str
    auth_method: str
    grants: list[GrantRead]


class AccountCreate(InputModel):
    professional_id: uuid.UUID
    email: EmailStr
    password: str = Field(min_length=12, max_length=256, description="Mot de passe provisoire (à changer)")


class PasswordReset(InputModel):
    temporary_password: str = Field(min_length=12, max_length=256)
    reset_totp: bool = False


class AccountActive(InputModel):
    active: bool


class AccountRead(ReadModel):
    id: uuid.UUID
    email: str
    professional_id: uuid.UUID
    active: bool
    must_change_password: bool
    totp_enabled_at: datetime | None
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime


class ApiTokenRead(ReadModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
