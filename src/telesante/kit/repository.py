"""Base class for repositories: the only place where queries are written."""

from __future__ import annotations

import uuid
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.kit.models import Base

M = TypeVar("M", bound=Base)


class RepositoryBase(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession):
        self.session = session

    async def get(self, id_: uuid.UUID, *options: Any) -> M | None:
        return await self.session.get(self.model, id_, options=list(options) or None)

    async def add(self, obj: M) -> M:
        self.session.add(obj)
        await self.session.flush()
        return obj

    def stage(self, obj: M) -> M:
        """Add without flushing: the caller flushes once for many (a batch's alerts)."""
        self.session.add(obj)
        return obj

    async def scalar(self, stmt: sa.Select) -> Any:
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def all(self, stmt: sa.Select) -> list[Any]:
        return list((await self.session.execute(stmt)).scalars().all())

    async def count(self, stmt: sa.Select) -> int:
        count_stmt = sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
        return int((await self.session.execute(count_stmt)).scalar_one())
