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


async def test_a_transaction_links_its_rows_without_rereading_and_survives_a_rolled_back_savepoint(session):
    """Appends after the first of a transaction reuse the row appended last (the chain lock is held); a row appended
    in a savepoint that rolls back is not used as the head; the next transaction reads the head again."""
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(session.sync_session.get_bind(), "before_cursor_execute", count)
    try:
        await _append(session, 1)
        statements.clear()
        await _append(session, 3)
        assert [s for s in statements if s.lstrip().upper().startswith("SELECT")] == []  # no lock, no read
        kept = await record_access(session, None, action=Action.READ, object_type="Test", object_id="kept")
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await record_access(session, None, action=Action.READ, object_type="Test", object_id="lost")
                raise RuntimeError("échec dans le point de sauvegarde")
        after = await record_access(session, None, action=Action.READ, object_type="Test", object_id="after")
        assert (after.seq, after.prev_hash) == (kept.seq + 1, kept.hash)
        await session.commit()
        statements.clear()
        nxt = await record_access(session, None, action=Action.READ, object_type="Test", object_id="next")
        assert any(
            s.lstrip().upper().startswith("SELECT") for s in statements
        )  # a new transaction reads again
        assert nxt.prev_hash == after.hash
    finally:
        sa.event.remove(session.sync_session.get_bind(), "before_cursor_execute", count)
    assert (await verify_chain(session)).ok
