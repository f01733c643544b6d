"""monitoring: a patient's readings indexed by time, whatever the measure

The readings were indexed by ``(enrolment_id, measure, effective_at)``. No query asks for one measure: the rules read
every measure of an enrolment since a time (``ObservationRepository.since``, each reading's window), the charts and
the monthly summary an enrolment's readings between two times, the patient's file his readings newest first. With
the measure second, the time bound could not narrow the scan: each judging read every reading the patient ever sent
(PostgreSQL 15 has no skip scan; SQLite skips only with statistics), and ingest slowed down as history grew. Measured
on SQLite with a year of four daily measures for 500 patients: the window of 250 enrolments took 80–100 ms instead of
3 ms (docs/performance.md, remote monitoring, tenth session).

``(enrolment_id, effective_at)`` bounds every one of these reads by its time range.

Revision ID: 6a7b0e01a009
Revises: 6a7b0e01a008
Create Date: 2026-12-07 04:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6a7b0e01a009"
down_revision: str | None = "6a7b0e01a008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READINGS = "monitoring_observations"


def upgrade() -> None:
    op.create_index("ix_monitoring_observations_enrolment_at", READINGS, ["enrolment_id", "effective_at"])
    op.drop_index("ix_monitoring_observations_enrolment_measure_at", table_name=READINGS)


def downgrade() -> None:
    op.create_index(
        "ix_monitoring_observations_enrolment_measure_at",
        READINGS,
        ["enrolment_id", "measure", "effective_at"],
    )
    op.drop_index("ix_monitoring_observations_enrolment_at", table_name=READINGS)
