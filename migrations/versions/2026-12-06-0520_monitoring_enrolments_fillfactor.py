"""monitoring: room on each page of the enrolments for their triage updates (PostgreSQL fillfactor 70)

Every device batch updates the triage state (colour, last reading) of each of its patients' enrolments. With full
pages (PostgreSQL's default fillfactor 100) each update writes the new row version on another page and a new entry in
each of the table's four indexes; with room left on the page the update stays on it (a "HOT" update: no index entry,
less for autovacuum to clean). Pages written from now on keep 30 % free; existing pages follow as they are rewritten
(VACUUM FULL, CLUSTER) — nothing is rewritten here. SQLite has no such setting: nothing to do there.

Revision ID: 6a7b0e01a005
Revises: 6a7b0e01a004
Create Date: 2026-12-06 05:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6a7b0e01a005"
down_revision: str | None = "6a7b0e01a004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE monitoring_enrolments SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE monitoring_enrolments RESET (fillfactor)")
