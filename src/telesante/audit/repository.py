from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from telesante.audit.models import AuditEvent
from telesante.kit.pagination import Page, PageRequest
from telesante.kit.repository import RepositoryBase, column_arrays

# Any constant: serialises audit appends across every PostgreSQL connection until commit.
_PG_AUDIT_LOCK = 727_274_001
# session.info key of the row this transaction appended last (see AuditRepository.chain_head).
_HEAD_KEY = "telesante_audit_chain_head"


@event.listens_for(Session, "after_transaction_end")
def _forget_chain_head(session: Session, transaction: SessionTransaction) -> None:
    # The lock ends with the outermost transaction: the next one must lock and read the chain's head again.
    if transaction.parent is None:
        session.info.pop(_HEAD_KEY, None)


class AuditRepository(RepositoryBase[AuditEvent]):
    model = AuditEvent

    async def lock_chain(self) -> None:
        """Take the chain lock for the rest of the transaction (SQLite: BEGIN IMMEDIATE already holds it)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_AUDIT_LOCK)))

    async def get_last(self) -> AuditEvent | None:
        return await self.scalar(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))

    async def chain_head(self) -> AuditEvent | None:
        """The chain's last row, with the chain lock held until the transaction ends.

        The first append of a transaction takes the lock and reads the last row; later appends of the same
        transaction reuse the row it appended last (nobody else can append while the lock is held), which saves a
        lock and a read per audit row. The remembered row is forgotten when the transaction ends, and not used if a
        savepoint rolled it back (it is then no longer persistent in the session)."""
        head = self.session.info.get(_HEAD_KEY)
        if head is not None:
            state = sa.inspect(head)
            if state.persistent and not state.expired_attributes & {"seq", "hash"}:
                return head
        await self.lock_chain()
        return await self.get_last()

    async def append(self, event: AuditEvent) -> AuditEvent:
        await self.add(event)
        self.session.info[_HEAD_KEY] = event
        return event

    async def insert_rows(self, rows: list[dict], common: dict[str, Any]) -> None:
        """Rows already chained, in order, in one statement; ``common``: the columns of the same value in every row.
        The next append of the transaction reads the head again (the lock is still held: nobody else appended)."""
        table = AuditEvent.__table__
        names = (*common, *rows[0])
        if self.dialect == "postgresql":
            # one statement, one parameter per column (kit.repository.column_arrays)
            await self.driver_execute(
                ("audit.insert_rows", names),
                lambda: sa.insert(table).from_select(
                    names, column_arrays(table, list(rows[0]), list(common))
                ),
                rows=rows,
                constants=common,
            )
        else:  # SQLite: an executemany of one prepared statement by the driver (kit.repository.sqlite_rows)
            await self.driver_execute(
                ("audit.insert_rows", names),
                lambda: sa.insert(table),
                rows=rows,
                constants=common,
                columns=names,
            )
        self.session.info.pop(_HEAD_KEY, None)

    async def list_for_patient(self, patient_id: uuid.UUID, page: PageRequest) -> Page[AuditEvent]:
        stmt = sa.select(AuditEvent).where(AuditEvent.patient_id == patient_id)
        total = await self.count(stmt)
        items = await self.all(stmt.order_by(AuditEvent.seq.desc()).offset(page.offset).limit(page.limit))
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)

    async def list_recent(self, page: PageRequest, *, break_glass_only: bool = False) -> Page[AuditEvent]:
        stmt = sa.select(AuditEvent)
        if break_glass_only:
            stmt = stmt.where(AuditEvent.break_glass.is_(True))
        total = await self.count(stmt)
        items = await self.all(stmt.order_by(AuditEvent.seq.desc()).offset(page.offset).limit(page.limit))
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)

    async def iterate(self, batch: int = 5000) -> AsyncIterator[AuditEvent]:
        last = 0
        while True:
            rows = await self.all(
                sa.select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
            )
            if not rows:
                return
            for row in rows:
                yield row
            last = rows[-1].seq
            self.session.expunge_all()
