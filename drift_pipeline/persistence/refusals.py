"""Refused attempts leave a trace: the refusal is written to the audit log after the refused change rolled back.

A forged report, a fake baseline or a self-approval is refused with one line and nothing it tried to change
is stored; `audited` then appends one `<action>` entry (actor, subject, the refusal) in its own
transaction, so a reviewer of the trail sees the attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from drift_pipeline.errors import DriftPipelineError, IntegrityError, InvalidInputError, NotFoundError, RefusedError
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store

log = logging.getLogger(__name__)

AUDITED = (RefusedError, IntegrityError, InvalidInputError, NotFoundError)
MAX_REASON = 500


def record(store: Store, *, actor: str, action: str, subject: str, tenant_id: str | None, reason: str) -> None:
    with store.transaction() as session:
        audit.append(
            store,
            session,
            actor=actor[:200],
            action=action,
            subject=subject[:400],
            tenant_id=tenant_id,
            reason=reason[:MAX_REASON],
        )


@contextmanager
def audited(
    store: Store, *, actor: str, action: str, subject: str, tenant_id: str | Callable[[], str | None] | None
) -> Iterator[None]:
    """Run the block; on a refusal, audit it as `action` and re-raise. `tenant_id` may be a callable
    (looked up only when needed)."""
    try:
        yield
    except AUDITED as exc:
        try:
            record(
                store,
                actor=actor,
                action=action,
                subject=subject,
                tenant_id=_tenant(tenant_id),
                reason=f"refused: {exc}",
            )
        except Exception as failure:  # the refusal is what the user must see; a failed trace is logged, not raised
            log.warning("could not audit the refused %s on %s: %s", action, subject, failure)
        raise


def _tenant(tenant_id: str | Callable[[], str | None] | None) -> str | None:
    if not callable(tenant_id):
        return tenant_id
    try:
        return tenant_id()
    except DriftPipelineError:  # e.g. an unknown migration: the refusal is still audited, without a tenant
        return None
