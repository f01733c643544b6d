import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from telesante.audit.models import AuditEvent
from telesante.audit.service import GENESIS_HASH, Action, record_access, record_accesses, verify_chain


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


def test_canonical_form_is_the_documented_json_byte_for_byte():
    """The chain's hashes were defined over json.dumps(sort_keys, compact, UTF-8): the C serialiser must give the very
    same bytes, or every row written before it would fail verification. Control characters, quotes, backslashes,
    accents, line and paragraph separators and characters outside the BMP are where encoders differ."""
    import json
    import random
    import uuid
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from telesante.audit.service import canonical_form

    alphabet = [chr(i) for i in range(0x00, 0x250)] + ["\u2028", "\u2029", "\ufeff", "\U0001f600", "’", "«"]
    draw = random.Random(7)
    for n in range(3000):
        text = "".join(draw.choice(alphabet) for _ in range(draw.randint(0, 24)))
        event = SimpleNamespace(
            seq=draw.randint(1, 2**53),
            occurred_at=datetime(2026, 12, 5, 1, 2, 3, n, tzinfo=UTC),
            request_id=text,
            channel="api",
            ip="2001:db8::1" if n % 2 else "",
            account_id=uuid.UUID(int=n) if n % 3 else None,
            actor=f"Dr {text} <a@b.fr>",
            roles="MEDECIN",
            organisations=text[::-1],
            action="read",
            object_type="Patient",
            object_id=text[:64],
            patient_id=uuid.UUID(int=n * 7) if n % 5 else None,
            break_glass=bool(n % 2),
            details=json.dumps({"motif": text}, ensure_ascii=False),
            prev_hash=GENESIS_HASH,
        )
        payload = json.loads(canonical_form(event))
        assert payload["request_id"] == text
        expected = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8"
        )
        assert canonical_form(event) == expected, text


async def test_a_batch_of_rows_is_chained_as_one_by_one_and_written_in_one_statement(session):
    """``record_accesses`` (a device batch: one row per patient) chains its rows exactly as ``record_access`` would,
    with the shared columns in every row, and writes them in one INSERT on either engine."""
    first = await record_access(session, None, action=Action.READ, object_type="Test", object_id="before")
    patients = [uuid.uuid4(), None, uuid.uuid4()]
    inserts = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS"):
            inserts.append(statement)

    sa.event.listen(session.sync_session.get_bind(), "before_cursor_execute", count)
    try:
        await record_accesses(
            session,
            None,
            action=Action.CREATE,
            object_type="MonitoringObservation",
            entries=[(p, p, {"count": n, "source": "device"}) for n, p in enumerate(patients, start=1)],
        )
    finally:
        sa.event.remove(session.sync_session.get_bind(), "before_cursor_execute", count)
    assert len(inserts) == 1
    session.expunge_all()
    rows = (
        (
            await session.execute(
                sa.select(AuditEvent).where(AuditEvent.seq > first.seq).order_by(AuditEvent.seq)
            )
        )
        .scalars()
        .all()
    )
    assert [r.seq for r in rows] == [first.seq + 1, first.seq + 2, first.seq + 3]
    assert [r.patient_id for r in rows] == patients
    assert [r.details for r in rows] == [
        '{"count":1,"source":"device"}',
        '{"count":2,"source":"device"}',
        '{"count":3,"source":"device"}',
    ]
    assert rows[0].prev_hash == first.hash and rows[1].prev_hash == rows[0].hash
    assert {(r.actor, r.action, r.object_type, r.occurred_at) for r in rows} == {
        ("système", "create", "MonitoringObservation", rows[0].occurred_at)
    }
    assert (await verify_chain(session)).ok


@pytest.mark.beyond_column_lengths
async def test_a_value_too_long_for_its_column_is_never_cut_silently(session):
    """The rows of a batch go to PostgreSQL as arrays (kit.repository.column_arrays): a string longer than its column
    is refused there, as a row inserted alone would be, and never cut to fit (an explicit ``::VARCHAR(64)`` would cut
    it). SQLite does not bound VARCHAR: the value is kept whole."""
    from telesante.audit.repository import AuditRepository

    common = {
        "occurred_at": datetime.now(UTC),
        "request_id": "r",
        "channel": "web",
        "ip": "",
        "account_id": None,
        "actor": "système",
        "roles": "",
        "organisations": "",
        "action": Action.READ,
        "object_type": "Test",
        "break_glass": False,
    }
    too_long = "x" * 80  # the column holds 64
    row = {"seq": 10**12, "object_id": too_long, "patient_id": None, "details": "{}", "prev_hash": "0" * 64}
    row["hash"] = "f" * 64
    if session.get_bind().dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="too long"):
            async with session.begin_nested():
                await AuditRepository(session).insert_rows([row], common)
        return
    await AuditRepository(session).insert_rows([row], common)
    stored = await session.execute(sa.select(AuditEvent.object_id).where(AuditEvent.seq == 10**12))
    assert stored.scalar_one() == too_long


def test_details_are_stored_as_json_dumps_writes_them_whatever_the_serialiser():
    """An audit row's details are hashed as stored: a flat dictionary goes through orjson (a device batch writes one
    row per patient), anything else through json.dumps; both must give json.dumps's bytes, or the text would depend
    on which path wrote it. Keys and values drawn where encoders differ: control characters, quotes, backslashes,
    separators, characters outside the BMP, lone surrogates (orjson refuses them), integers beyond 64 bits."""
    import json
    import random

    from telesante.audit.service import details_text

    alphabet = [chr(i) for i in range(0x00, 0x250)] + ["\u2028", "\u2029", "\ud800", "\U0001f600", "’", "«"]
    draw = random.Random(11)

    def text() -> str:
        return "".join(draw.choice(alphabet) for _ in range(draw.randint(0, 8)))

    def value():
        return draw.choice(
            [
                None,
                True,
                False,
                draw.randint(-1000, 1000),
                draw.randint(-(2**70), 2**70),
                text(),
                [text()],
                1.5,
            ]
        )

    for _ in range(5000):
        details = {text(): value() for _ in range(draw.randint(0, 4))}
        expected = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        assert details_text(details) == expected, details
    assert details_text(None) == details_text({}) == "{}"
