"""monitoring: a reading's code holds the questionnaires' own codes (up to 29 characters), not only LOINC's

``monitoring_observations.code`` keeps the code the reading was sent with: a LOINC code (at most 10 characters) or
one of Télésanté's own codes for the questionnaires' answers (``clinical.LOCAL``), the longest of which,
``symptome-malaise-hypoglycemie`` (diabetes), ``symptome-crachats-couleur`` and ``symptome-crachats-volume`` (chronic
respiratory failure), did not fit its 20 characters. SQLite stored them all the same (it does not enforce a
length); PostgreSQL refused the reading, and with it the patient's questionnaire or the gateway's batch
(found 2026-12-07, ``tests/monitoring/test_service.py``). 60 characters, as the programmes' and rules' codes.

On SQLite the table is rebuilt with the new declaration (Alembic's batch mode), its rows, keys and indexes kept. The
downgrade cuts codes longer than 20 characters to 20 on PostgreSQL (the reading's measure says what it was).

Revision ID: 6a7b0e01a011
Revises: 6a7b0e01a010
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6a7b0e01a011"
down_revision: str | None = "6a7b0e01a010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READINGS = "monitoring_observations"


def upgrade() -> None:
    with op.batch_alter_table(READINGS) as batch_op:
        batch_op.alter_column("code", existing_type=sa.String(20), type_=sa.String(60), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table(READINGS) as batch_op:
        batch_op.alter_column(
            "code",
            existing_type=sa.String(60),
            type_=sa.String(20),
            existing_nullable=False,
            postgresql_using="left(code, 20)",
        )
