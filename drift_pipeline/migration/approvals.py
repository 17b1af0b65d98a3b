"""Signed approvals: a reviewer's decision on a migration as an Ed25519-signed statement.

The statement is canonical JSON over what the reviewer looked at and decided::

    {"migration_id", "tenant_id", "agent_id", "candidate", "report_sha256", "decision", "reviewer",
     "reason", "timestamp"}

and the signed approval is `{"statement": ..., "key_id": ..., "signature": <base64>}`. `verify` checks it
on use against the registered reviewer's key and against the migration: its id, candidate and the hash of
the staging report it is in review with, so a signature cannot be moved to another migration or report.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drift_pipeline.errors import InvalidInputError, RefusedError
from drift_pipeline.migration import reviewers
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.reports import canonical_json, content_hash

DECISIONS = ("approved", "rejected")
FIELDS = (
    "migration_id",
    "tenant_id",
    "agent_id",
    "candidate",
    "report_sha256",
    "decision",
    "reviewer",
    "reason",
    "timestamp",
)
MAX_CLOCK_SKEW = timedelta(minutes=5)  # a statement dated later than this is refused


@dataclass(frozen=True)
class Subject:
    """What a statement must match: the migration as it stands in review."""

    migration_id: int
    tenant_id: str
    agent_id: str
    candidate: str
    report_sha256: str | None


@dataclass(frozen=True)
class VerifiedApproval:
    reviewer: str
    key_id: str
    decision: str
    reason: str
    statement: dict[str, Any]
    signed: dict[str, Any]
    sha256: str  # of the canonical signed approval: what the audit log and evidence refer to


def statement(subject: Subject, *, decision: str, reviewer: str, reason: str) -> dict[str, Any]:
    if decision not in DECISIONS:
        raise InvalidInputError(f"decision must be one of {', '.join(DECISIONS)}")
    if not reason.strip():
        raise InvalidInputError("a review needs a reason (--reason)")
    return {
        "migration_id": subject.migration_id,
        "tenant_id": subject.tenant_id,
        "agent_id": subject.agent_id,
        "candidate": subject.candidate,
        "report_sha256": subject.report_sha256,
        "decision": decision,
        "reviewer": reviewers.normalise_name(reviewer),
        "reason": reason.strip(),
        "timestamp": audit.utcnow().isoformat(),
    }


def sign(body: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    signature = private_key.sign(canonical_json(dict(body)))
    return {
        "statement": dict(body),
        "key_id": reviewers.key_id(private_key.public_key()),
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def load_signed(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"cannot read signed approval {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"signed approval {path} is not a JSON object")
    return data


def parse_signed(text: str) -> dict[str, Any]:
    """A signed approval pasted as JSON text (the Dagster launchpad's config field)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"the signed approval is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError("the signed approval is not a JSON object")
    return data


def claimed_reviewer(signed: Mapping[str, Any]) -> str:
    """Who the statement says signed it (unverified: for the audit entry of a refusal)."""
    body = signed.get("statement")
    return str(body.get("reviewer", "unknown"))[:100] if isinstance(body, Mapping) else "unknown"


def verify(store: Store, signed: Mapping[str, Any], subject: Subject) -> VerifiedApproval:
    """Check signature, registration and subject; return the verified decision."""
    body, signature = signed.get("statement"), signed.get("signature")
    if not isinstance(body, Mapping) or not isinstance(signature, str) or not signature:
        raise RefusedError("the approval is not signed: it needs 'statement' and 'signature' (migrate sign-approval)")
    missing = [f for f in FIELDS if f not in body]
    if missing or set(body) - set(FIELDS):
        raise RefusedError(f"the approval statement's fields are wrong (missing {missing or 'none'})")
    reviewer = reviewers.get(store, str(body["reviewer"]))
    if reviewers.normalise_name(str(body["reviewer"])) != body["reviewer"]:
        raise RefusedError("the approval names its reviewer in a non-normalised form")
    key = reviewers.load_public_key(reviewer.public_key_pem.encode("ascii"), f"key of reviewer {reviewer.name}")
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical_json(dict(body)))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise RefusedError(f"the approval's signature does not verify with {reviewer.name}'s registered key") from exc
    _check_subject(body, subject)
    return VerifiedApproval(
        reviewer=reviewer.name,
        key_id=reviewer.key_id,
        decision=str(body["decision"]),
        reason=str(body["reason"]),
        statement=dict(body),
        signed={"statement": dict(body), "key_id": reviewer.key_id, "signature": signature},
        sha256=content_hash({"statement": dict(body), "signature": signature}),
    )


def _check_subject(body: Mapping[str, Any], subject: Subject) -> None:
    want = {
        "migration_id": subject.migration_id,
        "tenant_id": subject.tenant_id,
        "agent_id": subject.agent_id,
        "candidate": subject.candidate,
        "report_sha256": subject.report_sha256,
    }
    for key, value in want.items():
        if body[key] != value:
            raise RefusedError(
                f"the approval was signed for {key} {body[key]!r}, but migration {subject.migration_id} has {value!r}"
            )
    if body["decision"] not in DECISIONS:
        raise RefusedError(f"the approval's decision {body['decision']!r} is not one of {', '.join(DECISIONS)}")
    if not str(body["reason"]).strip():
        raise RefusedError("the approval has no reason")
    try:
        at = datetime.fromisoformat(str(body["timestamp"]))
    except ValueError as exc:
        raise RefusedError(f"the approval's timestamp {body['timestamp']!r} is not ISO 8601") from exc
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if at - audit.utcnow() > MAX_CLOCK_SKEW:
        raise RefusedError("the approval is dated in the future")
