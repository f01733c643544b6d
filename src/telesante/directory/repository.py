from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from telesante.directory.models import (
    Membership,
    Organisation,
    OrganisationService,
    OrganisationType,
    Profession,
    Professional,
    Role,
)
from telesante.kit.pagination import Page, PageRequest
from telesante.kit.repository import RepositoryBase
from telesante.kit.text import fold


class OrganisationRepository(RepositoryBase[Organisation]):
    model = Organisation

    async def get_detail(self, organisation_id: uuid.UUID) -> Organisation | None:
        return await self.scalar(
            sa.select(Organisation)
            .where(Organisation.id == organisation_id)
            .options(selectinload(Organisation.services))
        )

    async def get_by_finess(self, finess: str) -> Organisation | None:
        return await self.scalar(sa.select(Organisation).where(Organisation.finess == finess))

    async def list_organisations(
        self,
        page: PageRequest,
        *,
        query: str = "",
        type_: OrganisationType | None = None,
        departement: str | None = None,
        finess: str | None = None,
    ) -> Page[Organisation]:
        stmt = sa.select(Organisation)
        if query:
            stmt = stmt.where(sa.func.lower(Organisation.name).like(f"%{query.lower()}%"))
        if type_ is not None:
            stmt = stmt.where(Organisation.type == type_)
        if departement:
            stmt = stmt.where(Organisation.departement == departement)
        if finess:
            stmt = stmt.where(Organisation.finess == finess)
        total = await self.count(stmt)
        items = await self.all(stmt.order_by(Organisation.name).offset(page.offset).limit(page.limit))
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)

    async def get_many(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, Organisation]:
        if not ids:
            return {}
        rows = await self.all(sa.select(Organisation).where(Organisation.id.in_(ids)))
        return {o.id: o for o in rows}


class ServiceRepository(RepositoryBase[OrganisationService]):
    model = OrganisationService

    async def get_by_name(self, organisation_id: uuid.UUID, name: str) -> OrganisationService | None:
        return await self.scalar(
            sa.select(OrganisationService).where(
                OrganisationService.organisation_id == organisation_id, OrganisationService.name == name
            )
        )


class ProfessionalRepository(RepositoryBase[Professional]):
    model = Professional

    async def get_detail(self, professional_id: uuid.UUID) -> Professional | None:
        return await self.scalar(
            sa.select(Professional)
            .where(Professional.id == professional_id)
            .options(selectinload(Professional.memberships))
        )

    async def display_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        return {
            p.id: p.display_name
            for p in await self.all(sa.select(Professional).where(Professional.id.in_(ids)))
        }

    async def get_by_rpps(self, rpps: str) -> Professional | None:
        return await self.scalar(sa.select(Professional).where(Professional.rpps == rpps))

    async def get_by_idnps(self, idnps: str) -> Professional | None:
        return await self.scalar(sa.select(Professional).where(Professional.idnps == idnps))

    async def list_professionals(
        self,
        page: PageRequest,
        *,
        query: str = "",
        profession: Profession | None = None,
        organisation_id: uuid.UUID | None = None,
        idnps: str | None = None,
        family: str | None = None,
    ) -> Page[Professional]:
        stmt = sa.select(Professional)
        if query:
            like = f"%{query.lower()}%"
            stmt = stmt.where(
                sa.or_(
                    sa.func.lower(Professional.family_name).like(like),
                    sa.func.lower(Professional.given_name).like(like),
                    Professional.rpps == query,
                )
            )
        if family:
            stmt = stmt.where(sa.func.lower(Professional.family_name).like(f"{fold(family).lower()}%"))
        if profession is not None:
            stmt = stmt.where(Professional.profession == profession)
        if idnps:
            stmt = stmt.where(Professional.idnps == idnps)
        if organisation_id is not None:
            stmt = stmt.where(
                Professional.id.in_(
                    sa.select(Membership.professional_id).where(
                        Membership.organisation_id == organisation_id, Membership.ended_at.is_(None)
                    )
                )
            )
        total = await self.count(stmt)
        items = await self.all(
            stmt.order_by(Professional.family_name, Professional.given_name)
            .offset(page.offset)
            .limit(page.limit)
        )
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)

    async def members_of(self, organisation_id: uuid.UUID) -> list[tuple[Membership, Professional]]:
        rows = await self.session.execute(
            sa.select(Membership, Professional)
            .join(Professional, Professional.id == Membership.professional_id)
            .where(Membership.organisation_id == organisation_id, Membership.ended_at.is_(None))
            .order_by(Professional.family_name, Professional.given_name)
        )
        return [(m, p) for m, p in rows.all()]


class MembershipRepository(RepositoryBase[Membership]):
    model = Membership

    async def find(
        self,
        professional_id: uuid.UUID,
        organisation_id: uuid.UUID | None,
        service_id: uuid.UUID | None,
        role,
    ) -> Membership | None:
        return await self.scalar(
            sa.select(Membership).where(
                Membership.professional_id == professional_id,
                Membership.organisation_id.is_(None)
                if organisation_id is None
                else Membership.organisation_id == organisation_id,
                Membership.service_id.is_(None)
                if service_id is None
                else Membership.service_id == service_id,
                Membership.role == role,
            )
        )

    async def holds_role(
        self,
        professional_id: uuid.UUID,
        organisation_id: uuid.UUID,
        role: Role,
        service_id: uuid.UUID | None = None,
    ) -> bool:
        """An active membership with this role in the organisation (in this service, when given)."""
        stmt = sa.select(sa.literal(True)).where(
            Membership.professional_id == professional_id,
            Membership.organisation_id == organisation_id,
            Membership.role == role,
            Membership.ended_at.is_(None),
        )
        if service_id is not None:
            stmt = stmt.where(Membership.service_id == service_id)
        return bool(await self.scalar(stmt.limit(1)))

    async def list_for_professional(self, professional_id: uuid.UUID) -> list[tuple[Membership, str]]:
        rows = await self.session.execute(
            sa.select(Membership, sa.func.coalesce(Organisation.name, "Région"))
            .outerjoin(Organisation, Organisation.id == Membership.organisation_id)
            .where(Membership.professional_id == professional_id)
            .order_by(Membership.ended_at.is_not(None), Organisation.name)
        )
        return [(m, n) for m, n in rows.all()]


class DirectoryStatisticsRepository(RepositoryBase[Organisation]):
    model = Organisation

    async def count_organisations_by_type(self) -> dict[str, int]:
        rows = await self.session.execute(
            sa.select(Organisation.type, sa.func.count())
            .where(Organisation.active.is_(True))
            .group_by(Organisation.type)
        )
        return {str(t.value if hasattr(t, "value") else t): int(n) for t, n in rows.all()}

    async def count_active_professionals(self) -> int:
        return await self.count(sa.select(Professional.id).where(Professional.active.is_(True)))


async def names_by_id(session, model, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Names of organisations or services, in one query."""
    if not ids:
        return {}
    rows = await session.execute(sa.select(model.id, model.name).where(model.id.in_(ids)))
    return {i: n for i, n in rows.all()}
