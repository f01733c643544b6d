"""monitoring: an enrolment's last reading is read from its readings, no longer written on the enrolment

``monitoring_enrolments.last_reading_at`` held the time of the enrolment's last reading (the worklist's "last
reading", and what "all green seen" marks as seen). Every judging of every reading wrote it: a device batch of 500
patients rewrote 500 enrolment rows, on SQLite as many random pages again in the write-ahead log, on PostgreSQL as
many new row versions. The readings hold the value: since migration 2026-12-07-0400 they are indexed by (enrolment,
time), and the last one is one search at the end of the enrolment's range (``Enrolment.last_reading_at``, read with
the enrolment). An evaluation now writes an enrolment row only when its triage colour changes.

The downgrade adds the column back and fills it from the readings.

Revision ID: 6a7b0e01a010
Revises: 6a7b0e01a009
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telesante.kit.models

revision: str = "6a7b0e01a010"
down_revision: str | None = "6a7b0e01a009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("monitoring_enrolments", "last_reading_at")


def downgrade() -> None:
    op.add_column(
        "monitoring_enrolments",
        sa.Column("last_reading_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.execute(
        "UPDATE monitoring_enrolments SET last_reading_at = (SELECT max(o.effective_at) FROM "
        "monitoring_observations o WHERE o.enrolment_id = monitoring_enrolments.id)"
    )
