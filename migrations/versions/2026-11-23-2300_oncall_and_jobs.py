"""durable jobs (timers) and on-call rotas: rotas, patterns, shifts, hand-overs, pages, calendar feeds

Revision ID: 7c4f0a1e2b3d
Revises: 5b1e7c2d9f40
Create Date: 2026-11-23 22:48:07.773804
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telesante.kit.models


revision: str = "7c4f0a1e2b3d"
down_revision: str | None = "5b1e7c2d9f40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("run_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=200), nullable=True),
        sa.Column("cancelled_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=False),
        sa.Column("created_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_jobs")),
    )
    with op.batch_alter_table("scheduled_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_scheduled_jobs_kind_dedupe", ["kind", "dedupe_key"], unique=False)
        batch_op.create_index(
            "ix_scheduled_jobs_pending", ["done_at", "cancelled_at", "run_at"], unique=False
        )

    op.create_table(
        "oncall_calendar_feeds",
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_oncall_calendar_feeds_professional_id_professionals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_calendar_feeds")),
        sa.UniqueConstraint("professional_id", name=op.f("uq_oncall_calendar_feeds_professional_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_oncall_calendar_feeds_token_hash")),
    )
    op.create_table(
        "oncall_rotas",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "scope",
            sa.Enum("service", "network", name="rotascope", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=True),
        sa.Column("head_professional_id", sa.Uuid(), nullable=False),
        sa.Column("ack_minutes", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["head_professional_id"],
            ["professionals.id"],
            name=op.f("fk_oncall_rotas_head_professional_id_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_oncall_rotas_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["organisation_services.id"],
            name=op.f("fk_oncall_rotas_service_id_organisation_services"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_rotas")),
    )
    with op.batch_alter_table("oncall_rotas", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oncall_rotas_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "oncall_pages",
        sa.Column("rota_id", sa.Uuid(), nullable=False),
        sa.Column("subject_type", sa.String(length=50), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("ack_minutes", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "acknowledged",
                "exhausted",
                "cancelled",
                name="pagestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "target",
            sa.Enum("primary", "backup", "head", name="pagetarget", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("paged_professional_id", sa.Uuid(), nullable=False),
        sa.Column("uncovered", sa.Boolean(), nullable=False),
        sa.Column("created_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paged_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("escalate_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"],
            ["professionals.id"],
            name=op.f("fk_oncall_pages_acknowledged_by_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["professionals.id"], name=op.f("fk_oncall_pages_created_by_professionals")
        ),
        sa.ForeignKeyConstraint(
            ["paged_professional_id"],
            ["professionals.id"],
            name=op.f("fk_oncall_pages_paged_professional_id_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["rota_id"], ["oncall_rotas.id"], name=op.f("fk_oncall_pages_rota_id_oncall_rotas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_pages")),
    )
    with op.batch_alter_table("oncall_pages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oncall_pages_paged_professional_id"), ["paged_professional_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_oncall_pages_rota_id"), ["rota_id"], unique=False)
        batch_op.create_index("ix_oncall_pages_subject", ["subject_type", "subject_id"], unique=False)

    op.create_table(
        "oncall_patterns",
        sa.Column("rota_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column(
            "role",
            sa.Enum("primary", "backup", name="shiftrole", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("weekdays", sa.String(length=20), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["professionals.id"], name=op.f("fk_oncall_patterns_created_by_professionals")
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_oncall_patterns_professional_id_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["rota_id"], ["oncall_rotas.id"], name=op.f("fk_oncall_patterns_rota_id_oncall_rotas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_patterns")),
    )
    with op.batch_alter_table("oncall_patterns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oncall_patterns_rota_id"), ["rota_id"], unique=False)

    op.create_table(
        "oncall_rota_organisations",
        sa.Column("rota_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_oncall_rota_organisations_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["rota_id"],
            ["oncall_rotas.id"],
            name=op.f("fk_oncall_rota_organisations_rota_id_oncall_rotas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rota_id", "organisation_id", name=op.f("pk_oncall_rota_organisations")),
    )
    op.create_table(
        "oncall_page_events",
        sa.Column("page_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "paged",
                "escalated",
                "acknowledged",
                "exhausted",
                "skipped",
                name="pageeventkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "target",
            sa.Enum("primary", "backup", "head", name="pagetarget", native_enum=False, length=10),
            nullable=True,
        ),
        sa.Column("professional_id", sa.Uuid(), nullable=True),
        sa.Column("at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["page_id"], ["oncall_pages.id"], name=op.f("fk_oncall_page_events_page_id_oncall_pages")
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_oncall_page_events_professional_id_professionals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_page_events")),
        sa.UniqueConstraint("page_id", "seq", name=op.f("uq_oncall_page_events_page_id_seq")),
    )
    with op.batch_alter_table("oncall_page_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oncall_page_events_page_id"), ["page_id"], unique=False)

    op.create_table(
        "oncall_shifts",
        sa.Column("rota_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column(
            "role",
            sa.Enum("primary", "backup", name="shiftrole", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("starts_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("pattern_id", sa.Uuid(), nullable=True),
        sa.Column("planned_professional_id", sa.Uuid(), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_oncall_shifts_end_after_start")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["professionals.id"], name=op.f("fk_oncall_shifts_created_by_professionals")
        ),
        sa.ForeignKeyConstraint(
            ["pattern_id"], ["oncall_patterns.id"], name=op.f("fk_oncall_shifts_pattern_id_oncall_patterns")
        ),
        sa.ForeignKeyConstraint(
            ["planned_professional_id"],
            ["professionals.id"],
            name=op.f("fk_oncall_shifts_planned_professional_id_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_oncall_shifts_professional_id_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["rota_id"], ["oncall_rotas.id"], name=op.f("fk_oncall_shifts_rota_id_oncall_rotas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_shifts")),
    )
    with op.batch_alter_table("oncall_shifts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_oncall_shifts_professional_time", ["professional_id", "starts_at"], unique=False
        )
        batch_op.create_index("ix_oncall_shifts_rota_time", ["rota_id", "starts_at", "ends_at"], unique=False)

    op.create_table(
        "oncall_shift_changes",
        sa.Column("shift_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("replacement", "swap", name="shiftchangekind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("from_professional_id", sa.Uuid(), nullable=False),
        sa.Column("to_professional_id", sa.Uuid(), nullable=False),
        sa.Column("other_shift_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", telesante.kit.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_professional_id"],
            ["professionals.id"],
            name=op.f("fk_oncall_shift_changes_from_professional_id_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["other_shift_id"],
            ["oncall_shifts.id"],
            name=op.f("fk_oncall_shift_changes_other_shift_id_oncall_shifts"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["professionals.id"],
            name=op.f("fk_oncall_shift_changes_recorded_by_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"], ["oncall_shifts.id"], name=op.f("fk_oncall_shift_changes_shift_id_oncall_shifts")
        ),
        sa.ForeignKeyConstraint(
            ["to_professional_id"],
            ["professionals.id"],
            name=op.f("fk_oncall_shift_changes_to_professional_id_professionals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_shift_changes")),
    )
    with op.batch_alter_table("oncall_shift_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oncall_shift_changes_shift_id"), ["shift_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oncall_shift_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oncall_shift_changes_shift_id"))

    op.drop_table("oncall_shift_changes")
    with op.batch_alter_table("oncall_shifts", schema=None) as batch_op:
        batch_op.drop_index("ix_oncall_shifts_rota_time")
        batch_op.drop_index("ix_oncall_shifts_professional_time")

    op.drop_table("oncall_shifts")
    with op.batch_alter_table("oncall_page_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oncall_page_events_page_id"))

    op.drop_table("oncall_page_events")
    op.drop_table("oncall_rota_organisations")
    with op.batch_alter_table("oncall_patterns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oncall_patterns_rota_id"))

    op.drop_table("oncall_patterns")
    with op.batch_alter_table("oncall_pages", schema=None) as batch_op:
        batch_op.drop_index("ix_oncall_pages_subject")
        batch_op.drop_index(batch_op.f("ix_oncall_pages_rota_id"))
        batch_op.drop_index(batch_op.f("ix_oncall_pages_paged_professional_id"))

    op.drop_table("oncall_pages")
    with op.batch_alter_table("oncall_rotas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oncall_rotas_organisation_id"))

    op.drop_table("oncall_rotas")
    op.drop_table("oncall_calendar_feeds")
    with op.batch_alter_table("scheduled_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_jobs_pending")
        batch_op.drop_index("ix_scheduled_jobs_kind_dedupe")

    op.drop_table("scheduled_jobs")
