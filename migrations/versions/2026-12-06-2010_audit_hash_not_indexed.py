"""audit: the chain's hash is no longer indexed (its UNIQUE constraint dropped)

Each audit row carries the SHA-256 of its canonical fields, which include the previous row's hash and the row's own
sequence number; the sequence number is the primary key, and appends are serialised by the chain lock (PostgreSQL's
advisory lock, SQLite's single writer). Two rows with the same hash would therefore need a SHA-256 collision: the
UNIQUE constraint guarded nothing, and nothing looks a row up by its hash (the chain is verified in sequence order).
Its index cost every audit row an insertion at a random place of a B-tree of 64-character keys: on SQLite, a device
batch of 500 patients dirtied hundreds of that index's pages, each written again to the write-ahead log at commit
(docs/performance.md, issue 7: +7 % readings a second on SQLite without it). On SQLite the table is rebuilt (Alembic's
batch mode), and its append-only triggers, which a rebuilt table loses, are made again as the foundation made them;
on PostgreSQL the constraint and its index are dropped (the trigger stays).

Revision ID: 6a7b0e01a006
Revises: 6a7b0e01a005
Create Date: 2026-12-06 20:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6a7b0e01a006"
down_revision: str | None = "6a7b0e01a005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite_append_only() -> None:
    """SQLite: the triggers of the foundation migration (``_append_only_audit``), gone with the rebuilt table."""
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_events_no_{verb.lower()}")
        op.execute(
            f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_hash"), type_="unique")
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_append_only()


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_hash"), ["hash"])
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_append_only()
