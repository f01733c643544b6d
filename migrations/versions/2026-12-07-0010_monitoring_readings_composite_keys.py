"""monitoring: a reading's foreign keys are (enrolment, patient) and (device, enrolment)

A reading referred to its enrolment, its patient and its device with three one-column foreign keys. It now refers to
(enrolment, patient) and (device, enrolment): two checks per reading instead of three, and each stronger than what
it replaces. The reading's patient must be its enrolment's patient, and its device one lent for that enrolment; the
patient exists because the enrolment refers to it.

On PostgreSQL each check is a query that locks the row it finds (``FOR KEY SHARE``, written to the write-ahead
log): for a device batch of 500 readings, the checks were about half the time of the readings' insert
(docs/performance.md, issue 7).

The keys referred to need a unique index. Each one replaces an existing index and leads with the same column:
``(patient_id, id)`` replaces the index on ``patient_id`` (a patient's enrolments), and ``(enrolment_id, id)``
replaces the one on ``enrolment_id`` (an enrolment's devices). No enrolment or device row is ever deleted, no
device changes enrolment and no enrolment changes patient, so existing rows satisfy the new keys. The upgrade
checks that anyway: PostgreSQL checks each new key against existing rows. On SQLite the table is rebuilt with its
rows (``batch_alter_table``), and the database's own check (``PRAGMA foreign_key_check``) runs after it.

Revision ID: 6a7b0e01a008
Revises: 6a7b0e01a007
Create Date: 2026-12-07 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6a7b0e01a008"
down_revision: str | None = "6a7b0e01a007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READINGS = "monitoring_observations"


ENROLMENT_KEY = "fk_monitoring_observations_enrolment_id_monitoring_enrolments"
DEVICE_KEY = "fk_monitoring_observations_device_id_monitoring_devices"


def _rekey(batch_op, enrolment: list[str], device: list[str]) -> None:
    """The readings' keys to their enrolment and device, dropped and made again on these columns (the same columns
    on the enrolment's and the device's side, ``enrolment_id`` standing for ``id``)."""
    batch_op.drop_constraint(DEVICE_KEY, type_="foreignkey")
    batch_op.drop_constraint(ENROLMENT_KEY, type_="foreignkey")
    batch_op.create_foreign_key(
        ENROLMENT_KEY, "monitoring_enrolments", enrolment, ["id" if c == "enrolment_id" else c for c in enrolment]
    )
    batch_op.create_foreign_key(
        DEVICE_KEY, "monitoring_devices", device, ["id" if c == "device_id" else c for c in device]
    )


def _check_sqlite() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    broken = op.get_bind().execute(sa.text(f"PRAGMA foreign_key_check({READINGS})")).fetchall()
    if broken:
        raise RuntimeError(
            f"{len(broken)} relevé(s) sans inclusion, patient ou appareil correspondant (première ligne : "
            f"{broken[0]!r}) : migration interrompue."
        )


def upgrade() -> None:
    with op.batch_alter_table("monitoring_enrolments", schema=None) as batch_op:
        batch_op.create_index("uq_monitoring_enrolments_patient_id_id", ["patient_id", "id"], unique=True)
        batch_op.drop_index("ix_monitoring_enrolments_patient")
    with op.batch_alter_table("monitoring_devices", schema=None) as batch_op:
        batch_op.create_index("uq_monitoring_devices_enrolment_id_id", ["enrolment_id", "id"], unique=True)
        batch_op.drop_index("ix_monitoring_devices_enrolment_id")
    with op.batch_alter_table(READINGS, schema=None) as batch_op:
        batch_op.drop_constraint("fk_monitoring_observations_patient_id_patients", type_="foreignkey")
        _rekey(batch_op, ["enrolment_id", "patient_id"], ["device_id", "enrolment_id"])
    _check_sqlite()


def downgrade() -> None:
    with op.batch_alter_table(READINGS, schema=None) as batch_op:
        _rekey(batch_op, ["enrolment_id"], ["device_id"])
        batch_op.create_foreign_key(
            "fk_monitoring_observations_patient_id_patients", "patients", ["patient_id"], ["id"]
        )
    with op.batch_alter_table("monitoring_devices", schema=None) as batch_op:
        batch_op.create_index("ix_monitoring_devices_enrolment_id", ["enrolment_id"], unique=False)
        batch_op.drop_index("uq_monitoring_devices_enrolment_id_id")
    with op.batch_alter_table("monitoring_enrolments", schema=None) as batch_op:
        batch_op.create_index("ix_monitoring_enrolments_patient", ["patient_id"], unique=False)
        batch_op.drop_index("uq_monitoring_enrolments_patient_id_id")
