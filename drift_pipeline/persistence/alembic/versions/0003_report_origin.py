"""reports bound to their origin (stored_reports) and registered reviewers

Revision ID: 0003_report_origin
Revises: 0002_audit_merkle
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_report_origin"
down_revision: str | None = "0002_audit_merkle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_reports",
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("tenant_id", sa.String(length=200), nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("report_id"),
    )
    op.create_index(
        "ix_stored_report_subject", "stored_reports", ["tenant_id", "agent_id", "model_id", "kind"], unique=False
    )
    op.create_table(
        "reviewers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("key_id"),
    )


def downgrade() -> None:
    op.drop_table("reviewers")
    op.drop_index("ix_stored_report_subject", table_name="stored_reports")
    op.drop_table("stored_reports")
