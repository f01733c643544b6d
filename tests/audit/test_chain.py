import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from telesante.audit.service import GENESIS_HASH, Action, record_access, verify_chain


async def _append(session, n):
    for i in range(n):
        await record_access(session, None, action=Action.READ, object_type="Test", object_id=i)


async def test_chain_is_intact_and_linked(session):
    await _append(session, 5)
    report = await verify_chain(session)
    assert report.ok and report.rows >= 5 and report.head_hash != GENESIS_HASH


async def test_database_refuses_update_and_delete(session):
    await _append(session, 1)
    for statement in ("UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with session.begin_nested():
                await session.execute(sa.text(statement))


async def _drop_guards(session):
    """What an attacker with database rights would do first."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
    else:
        await session.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        await session.execute(sa.text("DROP TRIGGER audit_events_no_delete"))


async def test_edited_row_is_detected(session):
    await _append(session, 4)
    target = (await session.execute(sa.text("SELECT max(seq) - 2 FROM audit_events"))).scalar_one()
    await _drop_guards(session)
    await session.execute(
        sa.text("UPDATE audit_events SET actor = 'quelqu''un d''autre' WHERE seq = :s"), {"s": target}
    )
    session.expunge_all()
    report = await verify_chain(session)
    assert not report.ok and report.first_bad_seq == target and "modifié" in report.problem


async def test_deleted_row_is_detected(session):
    await _append(session, 4)
    target = (await session.execute(sa.text("SELECT max(seq) - 1 FROM audit_events"))).scalar_one()
    await _drop_guards(session)
    await session.execute(sa.text("DELETE FROM audit_events WHERE seq = :s"), {"s": target})
    session.expunge_all()
    report = await verify_chain(session)
    assert not report.ok and report.first_bad_seq == target
