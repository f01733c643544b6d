from __future__ import annotations

import uuid

import sqlalchemy as sa

from telesante.consents.models import Consent, ConsentScopeType, InformationText
from telesante.kit.repository import RepositoryBase


class ConsentRepository(RepositoryBase[Consent]):
    model = Consent

    async def list_for_patient(self, patient_id: uuid.UUID) -> list[Consent]:
        return await self.all(
            sa.select(Consent).where(Consent.patient_id == patient_id).order_by(Consent.collected_at.desc())
        )

    async def latest(
        self, patient_id: uuid.UUID, scope_type: ConsentScopeType, scope_code: str
    ) -> Consent | None:
        return await self.scalar(
            sa.select(Consent)
            .where(
                Consent.patient_id == patient_id,
                Consent.scope_type == scope_type,
                Consent.scope_code == scope_code,
            )
            .order_by(Consent.collected_at.desc(), Consent.id)
            .limit(1)
        )


class InformationTextRepository(RepositoryBase[InformationText]):
    model = InformationText

    async def list_current(
        self, scope_type: ConsentScopeType | None = None, scope_code: str | None = None
    ) -> list[InformationText]:
        stmt = sa.select(InformationText).where(InformationText.retired_at.is_(None))
        if scope_type is not None:
            stmt = stmt.where(InformationText.scope_type == scope_type)
        if scope_code is not None:
            stmt = stmt.where(InformationText.scope_code == scope_code)
        return await self.all(
            stmt.order_by(InformationText.scope_type, InformationText.scope_code, InformationText.version)
        )

    async def find(
        self, scope_type: ConsentScopeType, scope_code: str, version: str
    ) -> InformationText | None:
        return await self.scalar(
            sa.select(InformationText).where(
                InformationText.scope_type == scope_type,
                InformationText.scope_code == scope_code,
                InformationText.version == version,
            )
        )
