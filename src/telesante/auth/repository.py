from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from telesante.auth.models import Account, ApiToken, ExternalIdentity, LoginAttempt, WebSession
from telesante.directory.models import Membership, Organisation, Professional
from telesante.kit.pagination import Page, PageRequest
from telesante.kit.repository import RepositoryBase


class AccountRepository(RepositoryBase[Account]):
    model = Account

    async def get_by_email(self, email: str) -> Account | None:
        return await self.scalar(
            sa.select(Account)
            .where(Account.email == email.strip().lower())
            .options(joinedload(Account.professional))
        )

    async def get_with_professional(self, account_id: uuid.UUID) -> Account | None:
        """The account and its professional in one query (a join: every authenticated request asks)."""
        return await self.scalar(
            sa.select(Account).where(Account.id == account_id).options(joinedload(Account.professional))
        )

    async def get_by_professional(self, professional_id: uuid.UUID) -> Account | None:
        return await self.scalar(sa.select(Account).where(Account.professional_id == professional_id))

    async def list_accounts(
        self, page: PageRequest, *, organisation_ids: frozenset[uuid.UUID] | None = None, query: str = ""
    ) -> Page[Account]:
        """All accounts, or (organisation administrators) those with a membership in their organisations."""
        stmt = sa.select(Account).join(Professional, Professional.id == Account.professional_id)
        if organisation_ids is not None:
            stmt = stmt.where(
                Account.professional_id.in_(
                    sa.select(Membership.professional_id).where(
                        Membership.organisation_id.in_(organisation_ids)
                    )
                )
            )
        if query:
            like = f"%{query.lower()}%"
            stmt = stmt.where(
                sa.or_(Account.email.like(like), sa.func.lower(Professional.family_name).like(like))
            )
        total = await self.count(stmt)
        items = await self.all(
            stmt.options(selectinload(Account.professional))
            .order_by(Professional.family_name, Account.email)
            .offset(page.offset)
            .limit(page.limit)
        )
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)

    async def active_grants(self, professional_id: uuid.UUID) -> list[tuple[Membership, str]]:
        rows = await self.session.execute(
            sa.select(Membership, sa.func.coalesce(Organisation.name, ""))
            .outerjoin(Organisation, Organisation.id == Membership.organisation_id)
            .where(Membership.professional_id == professional_id, Membership.ended_at.is_(None))
            .where(sa.or_(Organisation.id.is_(None), Organisation.active.is_(True)))
            .order_by(Organisation.name)
        )
        return [(m, name) for m, name in rows.all()]


class WebSessionRepository(RepositoryBase[WebSession]):
    model = WebSession

    async def get_by_hash(self, token_hash: str) -> WebSession | None:
        return await self.scalar(sa.select(WebSession).where(WebSession.token_hash == token_hash))

    async def revoke_all_for(self, account_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            sa.update(WebSession)
            .where(WebSession.account_id == account_id, WebSession.revoked_at.is_(None))
            .values(revoked_at=at)
        )


class ApiTokenRepository(RepositoryBase[ApiToken]):
    model = ApiToken

    async def get_by_hash(self, token_hash: str) -> ApiToken | None:
        return await self.scalar(sa.select(ApiToken).where(ApiToken.token_hash == token_hash))

    async def get_with_account(self, token_hash: str) -> tuple[ApiToken, Account] | None:
        """The token, its account and the account's professional in one query (every API request asks)."""
        row = (
            await self.session.execute(
                sa.select(ApiToken, Account)
                .join(Account, Account.id == ApiToken.account_id)
                .where(ApiToken.token_hash == token_hash)
                .options(joinedload(Account.professional))
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    async def list_for_account(self, account_id: uuid.UUID) -> list[ApiToken]:
        return await self.all(
            sa.select(ApiToken).where(ApiToken.account_id == account_id).order_by(ApiToken.created_at.desc())
        )


class LoginAttemptRepository(RepositoryBase[LoginAttempt]):
    model = LoginAttempt

    async def count_failures_from_ip(self, ip: str, since: datetime) -> int:
        return await self.count(
            sa.select(LoginAttempt.id).where(
                LoginAttempt.ip == ip, LoginAttempt.at >= since, LoginAttempt.succeeded.is_(False)
            )
        )


class ExternalIdentityRepository(RepositoryBase[ExternalIdentity]):
    model = ExternalIdentity

    async def get_by_subject(self, issuer: str, subject: str) -> ExternalIdentity | None:
        return await self.scalar(
            sa.select(ExternalIdentity).where(
                ExternalIdentity.issuer == issuer, ExternalIdentity.subject == subject
            )
        )
