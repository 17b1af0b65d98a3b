"""Model version registry: exact versions, first-class aliases with their resolution history, usage.

An alias (`gpt-4`) is a moving name; a version (`gpt-4-0613`) is what actually answers. The moment an
alias starts to resolve to a new version is exactly how a silent provider update shows up, so every
resolution is kept as a period with `valid_from`/`valid_to`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from drift_pipeline.errors import NotFoundError, RefusedError
from drift_pipeline.identifiers import check_model_id, check_provider
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import AliasResolution, ManifestRevision, ModelAlias, ModelVersion
from drift_pipeline.versioning.agent_config import check_decoding, check_no_credentials

STATUSES = ("active", "deprecated", "sunset")


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version as callers see it."""

    model_id: str
    provider: str
    status: str
    release_date: date | None = None
    fingerprint: str | None = None
    deprecated_at: date | None = None
    sunset_date: date | None = None
    successor_id: str | None = None
    decoding: dict[str, Any] = field(default_factory=dict)
    litellm_params: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def litellm_model(self) -> str:
        """The name litellm routes on: `<provider>/<model_id>`."""
        return f"{self.provider}/{self.model_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "provider": self.provider,
            "status": self.status,
            "release_date": _iso(self.release_date),
            "fingerprint": self.fingerprint,
            "deprecated_at": _iso(self.deprecated_at),
            "sunset_date": _iso(self.sunset_date),
            "successor_id": self.successor_id,
            "decoding": self.decoding,
            "litellm_params": self.litellm_params,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class AliasPeriod:
    alias: str
    model_id: str
    valid_from: datetime
    valid_to: datetime | None
    observed_by: str


def add_version(
    store: Store,
    provider: str,
    model_id: str,
    *,
    actor: str,
    aliases: tuple[str, ...] | list[str] = (),
    release_date: date | None = None,
    fingerprint: str | None = None,
    sunset: date | None = None,
    successor: str | None = None,
    decoding: dict[str, Any] | None = None,
    litellm_params: dict[str, Any] | None = None,
    reason: str = "",
) -> VersionInfo:
    """Register an exact version (and point `aliases` at it). Refuses duplicates, alias clashes and ids or
    provider names that break the identifier rules (`identifiers.check_model_id`, `check_provider`)."""
    check_model_id(model_id)
    check_provider(provider)
    # Stored in the audit log and handed to the runtime: typed and finite, and never a credential (the
    # runtime reads those from the environment; `litellm_params` may name the variable, e.g. `api_key_env`).
    decoding = check_decoding(decoding or {})
    check_no_credentials(litellm_params or {}, "litellm_params")
    with store.transaction() as session:
        if session.get(ModelVersion, model_id) is not None:
            raise RefusedError(f"model {model_id!r} is already registered")
        if (alias := session.get(ModelAlias, model_id)) is not None:
            raise RefusedError(
                f"{model_id!r} is already an alias (resolves to {alias.model_id}); a version id must differ"
            )
        if successor is not None:
            _version(session, successor)
        row = ModelVersion(
            model_id=model_id,
            provider=provider,
            release_date=release_date,
            fingerprint=fingerprint,
            status="deprecated" if sunset else "active",
            deprecated_at=audit.utcnow().date() if sunset else None,
            sunset_date=sunset,
            successor_id=successor,
            decoding=decoding or {},
            litellm_params=litellm_params or {},
            registered_at=audit.utcnow(),
        )
        session.add(row)
        session.flush()
        audit.append(
            store,
            session,
            actor=actor,
            action="registry.add",
            subject=model_id,
            after=_info(session, row).to_dict(),
            reason=reason,
        )
        for alias in aliases:
            _set_alias(store, session, alias, model_id, actor=actor, observed_by=actor, reason=reason)
        return _info(session, row)


def set_alias(store: Store, alias: str, model_id: str, *, actor: str, observed_by: str = "", reason: str = "") -> bool:
    """Point `alias` at `model_id`. Returns False when it already resolved there (nothing changes)."""
    with store.transaction() as session:
        return _set_alias(store, session, alias, model_id, actor=actor, observed_by=observed_by or actor, reason=reason)


def _set_alias(
    store: Store, session: Session, alias: str, model_id: str, *, actor: str, observed_by: str, reason: str
) -> bool:
    check_model_id(alias, "alias")
    if session.get(ModelVersion, alias) is not None:
        raise RefusedError(f"{alias!r} is a registered version id and cannot also be an alias")
    _version(session, model_id)
    now = audit.utcnow()
    current = session.get(ModelAlias, alias, with_for_update=True)
    if current is not None and current.model_id == model_id:
        return False
    before = {"alias": alias, "model_id": current.model_id} if current else None
    if current is None:
        session.add(ModelAlias(alias=alias, model_id=model_id, since=now))
    else:
        current.model_id, current.since = model_id, now
        open_period = session.execute(
            select(AliasResolution).where(AliasResolution.alias == alias, AliasResolution.valid_to.is_(None))
        ).scalar_one_or_none()
        if open_period is not None:
            open_period.valid_to = now
    session.add(AliasResolution(alias=alias, model_id=model_id, valid_from=now, valid_to=None, observed_by=observed_by))
    session.flush()
    audit.append(
        store,
        session,
        actor=actor,
        action="registry.alias",
        subject=alias,
        before=before,
        after={"alias": alias, "model_id": model_id, "observed_by": observed_by},
        reason=reason,
    )
    return True


def deprecate(
    store: Store, model_id: str, *, sunset: date, actor: str, successor: str | None = None, reason: str = ""
) -> VersionInfo:
    """Mark a version deprecated with a sunset date (and optionally its successor)."""
    with store.transaction() as session:
        row = _version(session, model_id, lock=True)
        if successor is not None:
            if successor == model_id:
                raise RefusedError(f"{model_id!r} cannot be its own successor")
            _version(session, successor)
        before = _info(session, row).to_dict()
        row.status = "sunset" if sunset <= audit.utcnow().date() else "deprecated"
        row.deprecated_at = row.deprecated_at or audit.utcnow().date()
        row.sunset_date = sunset
        row.successor_id = successor or row.successor_id
        session.flush()
        info = _info(session, row)
        audit.append(
            store,
            session,
            actor=actor,
            action="registry.deprecate",
            subject=model_id,
            before=before,
            after=info.to_dict(),
            reason=reason,
        )
        return info


def record_fingerprint(store: Store, model_id: str, fingerprint: str, *, actor: str, reason: str = "") -> bool:
    """Store a newly observed provider fingerprint for a version. Returns False when unchanged."""
    with store.transaction() as session:
        row = _version(session, model_id, lock=True)
        if row.fingerprint == fingerprint:
            return False
        before = {"fingerprint": row.fingerprint}
        row.fingerprint = fingerprint
        audit.append(
            store,
            session,
            actor=actor,
            action="registry.fingerprint",
            subject=model_id,
            before=before,
            after={"fingerprint": fingerprint},
            reason=reason,
        )
        return True


def get_version(store: Store, model_id: str) -> VersionInfo:
    with store.session() as session:
        return _info(session, _version(session, model_id))


def list_versions(store: Store) -> list[VersionInfo]:
    with store.session() as session:
        rows = (
            session.execute(select(ModelVersion).order_by(ModelVersion.provider, ModelVersion.model_id)).scalars().all()
        )
        return [_info(session, row) for row in rows]


def resolve_alias(store: Store, name: str) -> str | None:
    """The version an alias resolves to today, or None when `name` is not an alias."""
    with store.session() as session:
        alias = session.get(ModelAlias, name)
        return alias.model_id if alias else None


def aliases(store: Store) -> dict[str, str]:
    """Every alias and the version it resolves to today."""
    with store.session() as session:
        return {alias: model_id for alias, model_id in session.execute(select(ModelAlias.alias, ModelAlias.model_id))}


def alias_history(store: Store, alias: str) -> list[AliasPeriod]:
    with store.session() as session:
        rows = session.execute(
            select(AliasResolution).where(AliasResolution.alias == alias).order_by(AliasResolution.id)
        ).scalars()
        return [AliasPeriod(r.alias, r.model_id, r.valid_from, r.valid_to, r.observed_by) for r in rows]


def usage(store: Store) -> dict[str, int]:
    """Pinned tenant agents per version (current manifest revisions only); 0 means eligible for deprecation."""
    latest = (
        select(ManifestRevision.tenant_id, ManifestRevision.agent_id, func.max(ManifestRevision.revision).label("rev"))
        .group_by(ManifestRevision.tenant_id, ManifestRevision.agent_id)
        .subquery()
    )
    pinned = (
        select(ManifestRevision.pinned_model_id, func.count())
        .join(
            latest,
            (ManifestRevision.tenant_id == latest.c.tenant_id)
            & (ManifestRevision.agent_id == latest.c.agent_id)
            & (ManifestRevision.revision == latest.c.rev),
        )
        .group_by(ManifestRevision.pinned_model_id)
    )
    with store.session() as session:
        counts = {model_id: 0 for model_id in session.execute(select(ModelVersion.model_id)).scalars()}
        counts.update({model_id: int(n) for model_id, n in session.execute(pinned)})
    return counts


def require_exact_version(session: Session, model_id: str) -> ModelVersion:
    """The registered version `model_id`; an alias or unknown id is refused with a one-line reason."""
    row = session.get(ModelVersion, model_id)
    if row is not None:
        return row
    alias = session.get(ModelAlias, model_id)
    if alias is not None:
        raise RefusedError(
            f"{model_id!r} is an alias (it resolves to {alias.model_id!r} today); pin an exact version such as {alias.model_id!r}"
        )
    raise NotFoundError(f"unknown model {model_id!r}: register it first with `drift-pipeline registry add`")


def _version(session: Session, model_id: str, *, lock: bool = False) -> ModelVersion:
    row = session.get(ModelVersion, model_id, with_for_update=lock or None)
    if row is None:
        raise NotFoundError(f"unknown model {model_id!r}")
    return row


def _info(session: Session, row: ModelVersion) -> VersionInfo:
    aliases = session.execute(
        select(ModelAlias.alias).where(ModelAlias.model_id == row.model_id).order_by(ModelAlias.alias)
    ).scalars()
    status = row.status
    if row.sunset_date is not None and row.sunset_date <= audit.utcnow().date():
        status = "sunset"  # a passed sunset date is a fact, whether or not anyone re-marked the row
    return VersionInfo(
        model_id=row.model_id,
        provider=row.provider,
        status=status,
        release_date=row.release_date,
        fingerprint=row.fingerprint,
        deprecated_at=row.deprecated_at,
        sunset_date=row.sunset_date,
        successor_id=row.successor_id,
        decoding=dict(row.decoding or {}),
        litellm_params=dict(row.litellm_params or {}),
        aliases=tuple(aliases),
    )


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None
