"""monitoring: the readings are no longer indexed by patient

A reading belongs to an enrolment, and each enrolment to one patient: a patient's readings are found through the
patient's enrolments (``ObservationRepository.for_patient``: the enrolments by ``ix_monitoring_enrolments_patient``,
then the readings by ``ix_monitoring_observations_enrolment_measure_at``). The index by patient cost every reading
one more insertion at a random place of a B-tree: on SQLite, a device batch of 500 patients dirtied hundreds of its
pages, each written again to the write-ahead log at commit (docs/performance.md, issue 7). No code deletes a patient
row, so no foreign-key check on a patient's deletion needs it either.

Revision ID: 6a7b0e01a007
Revises: 6a7b0e01a006
Create Date: 2026-12-06 20:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6a7b0e01a007"
down_revision: str | None = "6a7b0e01a006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_monitoring_observations_patient_id", table_name="monitoring_observations")


def downgrade() -> None:
    op.create_index(
        "ix_monitoring_observations_patient_id", "monitoring_observations", ["patient_id"], unique=False
    )
