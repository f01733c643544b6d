"""monitoring: a programme version says why it was made (rule revisions)

Revision ID: 6a7b0e01a004
Revises: 6a7b0e01a003
Create Date: 2026-12-04 22:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6a7b0e01a004"
down_revision: str | None = "6a7b0e01a003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("monitoring_programmes") as batch:
        batch.add_column(sa.Column("revision_note", sa.String(length=1000), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("monitoring_programmes") as batch:
        batch.drop_column("revision_note")
