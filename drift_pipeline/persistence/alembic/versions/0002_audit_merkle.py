"""audit log as a Merkle tree: per-tenant sub-chain, signed checkpoints, keyring, append-only triggers

Revision ID: 0002_audit_merkle
Revises: 0001
Create Date: 2026-12-02 06:30:00

Existing entries keep their hashes: the per-tenant columns stay null for them (their hash never covered
these fields), and the first new entry of a tenant links to its last old one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from drift_pipeline.persistence import append_only

revision: str = "0002_audit_merkle"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant_seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tenant_prev_hash", sa.String(length=64), nullable=True))
    op.create_index("uq_audit_tenant_seq", "audit_log", ["tenant_id", "tenant_seq"], unique=True)
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("timestamp", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=False),
        sa.Column("object_path", sa.String(length=400), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_checkpoints_tree_size", "audit_checkpoints", ["tree_size"], unique=False)
    op.create_table(
        "audit_signing_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )
    append_only.install(op.get_bind())


def downgrade() -> None:
    append_only.drop(op.get_bind())
    op.drop_table("audit_signing_keys")
    op.drop_index("ix_audit_checkpoints_tree_size", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    op.drop_index("uq_audit_tenant_seq", table_name="audit_log")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("tenant_prev_hash")
        batch_op.drop_column("tenant_seq")
