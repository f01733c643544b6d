"""care relationship search keys: given names and birth date, covering indexes, disjoint name ranges

The scoped trait search reads the page of 20 and its count from the two (organisation, name) indexes alone:
they now hold the sort keys (given names, birth date) and the patient. The used-name key is kept only when it
differs from the birth name, so that a patient appears in one range only.

Revision ID: 5b1e7c2d9f40
Revises: aa03906bc2c7
Create Date: 2026-11-23 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telesante.kit.models


revision: str = "5b1e7c2d9f40"
down_revision: str | None = "aa03906bc2c7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CI_200 = sa.String(length=200).with_variant(sa.String(length=200, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("care_relationships", schema=None) as batch_op:
        batch_op.drop_index("ix_care_relationships_org_used_family")
        batch_op.drop_index("ix_care_relationships_org_birth_family")
        batch_op.add_column(sa.Column("search_given", _CI_200, server_default="", nullable=False))
        batch_op.add_column(sa.Column("birth_date", sa.Date(), nullable=True))

    # Existing relationships take their patient's keys; the used name only when it is not the birth name.
    for column in ("search_birth_family", "search_used_family", "search_given", "birth_date"):
        op.execute(
            f"UPDATE care_relationships SET {column} = "
            f"(SELECT patients.{column} FROM patients WHERE patients.id = care_relationships.patient_id)"
        )
    op.execute(
        "UPDATE care_relationships SET search_used_family = '' WHERE search_used_family = search_birth_family"
    )

    with op.batch_alter_table("care_relationships", schema=None) as batch_op:
        batch_op.alter_column("birth_date", existing_type=sa.Date(), nullable=False)
        batch_op.create_index(
            "ix_care_relationships_org_birth_family",
            ["organisation_id", "search_birth_family", "search_given", "birth_date", "patient_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_care_relationships_org_used_family",
            [
                "organisation_id",
                "search_used_family",
                "search_birth_family",
                "search_given",
                "birth_date",
                "patient_id",
            ],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("care_relationships", schema=None) as batch_op:
        batch_op.drop_index("ix_care_relationships_org_used_family")
        batch_op.drop_index("ix_care_relationships_org_birth_family")
        batch_op.drop_column("birth_date")
        batch_op.drop_column("search_given")
    op.execute(
        "UPDATE care_relationships SET search_used_family = search_birth_family WHERE search_used_family = ''"
    )
    with op.batch_alter_table("care_relationships", schema=None) as batch_op:
        batch_op.create_index(
            "ix_care_relationships_org_birth_family", ["organisation_id", "search_birth_family"], unique=False
        )
        batch_op.create_index(
            "ix_care_relationships_org_used_family", ["organisation_id", "search_used_family"], unique=False
        )
