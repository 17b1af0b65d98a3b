"""SQLAlchemy 2.x tables of the store. Schema changes go through Alembic (`drift_pipeline/persistence/alembic`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(200)


class Base(DeclarativeBase):
    """Declarative base; `Base.metadata` is Alembic's target."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class ModelVersion(Base):
    """An exact model version a provider serves (never an alias)."""

    __tablename__ = "model_versions"

    model_id: Mapped[str] = mapped_column(ID, primary_key=True)
    provider: Mapped[str] = mapped_column(String(100))
    release_date: Mapped[date | None] = mapped_column(Date)
    fingerprint: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active")
    deprecated_at: Mapped[date | None] = mapped_column(Date)
    sunset_date: Mapped[date | None] = mapped_column(Date)
    successor_id: Mapped[str | None] = mapped_column(ID)
    # Default decoding parameters (temperature, max_tokens, seed, ...) the runtime hands the platform.
    decoding: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # How litellm reaches it beyond "<provider>/<model_id>" (api_base for OpenAI-compatible servers, ...).
    litellm_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelAlias(Base):
    """The version an alias resolves to now; the full history is in `alias_resolutions`."""

    __tablename__ = "model_aliases"

    alias: Mapped[str] = mapped_column(ID, primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("model_versions.model_id"))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AliasResolution(Base):
    """One period during which an alias resolved to a version: how a silent update shows up."""

    __tablename__ = "alias_resolutions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alias: Mapped[str] = mapped_column(ID, index=True)
    model_id: Mapped[str] = mapped_column(ID)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    observed_by: Mapped[str] = mapped_column(String(200))


class Tenant(Base):
    """A tenant of the platform; also the row locked to serialise changes to its manifests."""

    __tablename__ = "tenants"

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    contact: Mapped[str | None] = mapped_column(String(320))
    regulated: Mapped[bool] = mapped_column(Boolean, default=False)
    sampling_consent: Mapped[bool] = mapped_column(Boolean, default=True)
    cadence: Mapped[str] = mapped_column(String(20), default="daily")
    pii_patterns: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ManifestRevision(Base):
    """One immutable revision of a tenant agent's manifest; the highest revision is in force."""

    __tablename__ = "manifest_revisions"
    __table_args__ = (UniqueConstraint("tenant_id", "agent_id", "revision", name="uq_manifest_revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id"), index=True)
    agent_id: Mapped[str] = mapped_column(ID)
    revision: Mapped[int] = mapped_column(Integer)
    pinned_model_id: Mapped[str] = mapped_column(ForeignKey("model_versions.model_id"))
    pinned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    behavioral_baseline_id: Mapped[str | None] = mapped_column(String(200))
    drift_alert_threshold: Mapped[float] = mapped_column(Float)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")


class ChangeCounter(Base):
    """A single row bumped by every manifest change: runtime caches poll it to invalidate."""

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """Append-only, hash-chained audit log entry; a leaf of the audit Merkle tree (`persistence.audit`)."""

    __tablename__ = "audit_log"
    # One tenant entry per position of its sub-chain: a duplicate cannot hide a removed one.
    __table_args__ = (Index("uq_audit_tenant_seq", "tenant_id", "tenant_seq", unique=True),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    tenant_id: Mapped[str | None] = mapped_column(ID, index=True)
    subject: Mapped[str] = mapped_column(String(400))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The tenant's own sub-chain (null for platform entries and for entries written before revision 0002):
    # its position among the tenant's entries and the hash of the tenant's previous entry.
    tenant_seq: Mapped[int | None] = mapped_column(Integer)
    tenant_prev_hash: Mapped[str | None] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed checkpoint of the audit Merkle tree (also kept, write-once, in object storage)."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tree_size: Mapped[int] = mapped_column(Integer, index=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[str] = mapped_column(String(40))  # the exact signed text (ISO 8601, UTC)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(200))
    object_path: Mapped[str] = mapped_column(String(400))


class AuditSigningKey(Base):
    """Keyring: every public key that ever signed a checkpoint, so rotated keys stay verifiable."""

    __tablename__ = "audit_signing_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)  # PEM (SubjectPublicKeyInfo)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReplayOutput(Base):
    """Replay cache and resumability log: one row per (model, full request), never paid for twice."""

    __tablename__ = "replay_outputs"

    cache_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(ID, index=True)
    provider_revision: Mapped[str | None] = mapped_column(String(200))
    request: Mapped[dict[str, Any]] = mapped_column()
    response: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Baseline(Base):
    """Index of immutable behavioural baselines (the data lives in object storage)."""

    __tablename__ = "baselines"

    baseline_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ID, index=True)
    agent_id: Mapped[str] = mapped_column(ID)
    model_id: Mapped[str] = mapped_column(ID)
    uri: Mapped[str] = mapped_column(Text)
    n_prompts: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StoredReport(Base):
    """A drift report or staging result the system produced, bound to its origin by its content hash.

    Only reports recorded here can approve, promote or answer evidence; the same canonical bytes are
    copied to object storage and the hash is in the audit log, so an edit of this row is caught on use.
    """

    __tablename__ = "stored_reports"
    __table_args__ = (Index("ix_stored_report_subject", "tenant_id", "agent_id", "model_id", "kind"),)

    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "drift" (nightly replay) | "staging"
    tenant_id: Mapped[str] = mapped_column(ID)
    agent_id: Mapped[str] = mapped_column(ID)
    model_id: Mapped[str] = mapped_column(ID)
    sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column()
    uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))


class Reviewer(Base):
    """A registered principal who may sign migration approvals; `name` is the normalised name."""

    __tablename__ = "reviewers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    public_key_pem: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))


class AlertIncident(Base):
    """One incident per tenant, agent and drift episode: the deduplication key for alerts."""

    __tablename__ = "alert_incidents"
    __table_args__ = (UniqueConstraint("dedup_key", name="uq_alert_dedup"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(400))
    tenant_id: Mapped[str] = mapped_column(ID, index=True)
    agent_id: Mapped[str] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(20), default="open")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deliveries: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Migration(Base):
    """A migration of one tenant agent to a candidate version, driven by the gate state machine."""

    __tablename__ = "migrations"
    __table_args__ = (Index("ix_migration_agent", "tenant_id", "agent_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id"))
    agent_id: Mapped[str] = mapped_column(ID)
    from_model_id: Mapped[str] = mapped_column(ID)
    to_model_id: Mapped[str] = mapped_column(ID)
    from_revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(30))
    canary_share: Mapped[float] = mapped_column(Float, default=0.0)
    version: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
