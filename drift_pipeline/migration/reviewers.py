"""Reviewers: the registered principals who may sign migration approvals (name + Ed25519 public key).

A name is compared in one normalised form (Unicode NFKC, case-folded, surrounding whitespace stripped) and
refused when whitespace or control/format characters remain inside it, so `mallory `, `Mallory` and a
full-width `ｍａｌｌｏｒｙ` are one person. `identity_key` reduces a free-text actor (the proposer recorded
from `DRIFT_PIPELINE_ACTOR`) the same way, for the "not your own migration" rule.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from drift_pipeline.errors import InvalidInputError, NotFoundError, RefusedError
from drift_pipeline.persistence import audit
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.tables import Reviewer

MAX_NAME = 100
_BAD_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")
# Prefixes the system itself puts on actors (`cli:<os user>`, `dagster:<run>`): the person behind is the same.
ACTOR_PREFIXES = ("cli:", "dagster:")


@dataclass(frozen=True)
class ReviewerInfo:
    name: str
    display_name: str
    public_key_pem: str
    key_id: str
    created_at: datetime
    created_by: str


def normalise_name(name: str) -> str:
    """The one form a reviewer name is stored and compared in; refuses names that hide characters."""
    norm = unicodedata.normalize("NFKC", str(name)).casefold().strip()
    if not norm:
        raise InvalidInputError("a reviewer name cannot be empty")
    if len(norm) > MAX_NAME:
        raise InvalidInputError(f"a reviewer name has at most {MAX_NAME} characters")
    bad = [c for c in norm if c.isspace() or unicodedata.category(c) in _BAD_CATEGORIES]
    if bad:
        raise InvalidInputError(
            f"reviewer name {name!r} contains whitespace or control characters ({', '.join(map(ascii, bad))})"
        )
    return norm


def identity_key(actor: str) -> str:
    """A free-text actor reduced for comparison: NFKC, case-folded, without whitespace, control or format
    characters, and without the system's own `cli:`/`dagster:` prefix."""
    norm = unicodedata.normalize("NFKC", str(actor)).casefold()
    norm = "".join(c for c in norm if not (c.isspace() or unicodedata.category(c) in _BAD_CATEGORIES))
    for prefix in ACTOR_PREFIXES:
        if norm.startswith(prefix):
            return norm[len(prefix) :]
    return norm


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable fingerprint of a public key (sha256 of its raw 32 bytes, first 16 hex digits)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(pem: bytes, what: str = "public key") -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{what} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInputError(f"{what} is not an Ed25519 key")
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise InvalidInputError(f"cannot read private key {path}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInputError(f"{path} is not an Ed25519 private key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def add(store: Store, name: str, public_key_pem: bytes, *, actor: str) -> ReviewerInfo:
    """Register a reviewer under their normalised name (refused if that name or key is taken)."""
    norm = normalise_name(name)
    key = load_public_key(public_key_pem)
    kid, pem = key_id(key), public_pem(key).decode("ascii")
    with store.transaction() as session:
        if session.get(Reviewer, norm) is not None:
            raise RefusedError(f"reviewer {norm!r} is already registered (names compare case- and width-blind)")
        taken = session.execute(select(Reviewer).where(Reviewer.key_id == kid)).scalar_one_or_none()
        if taken is not None:
            raise RefusedError(f"this public key is already registered to reviewer {taken.name!r}")
        row = Reviewer(
            name=norm,
            display_name=str(name).strip()[:200],
            public_key_pem=pem,
            key_id=kid,
            created_at=audit.utcnow(),
            created_by=actor,
        )
        session.add(row)
        session.flush()
        audit.append(
            store,
            session,
            actor=actor,
            action="reviewer.add",
            subject=f"reviewer:{norm}",
            after={"name": norm, "key_id": kid, "public_key_pem": pem},
            reason="reviewer registered",
        )
        return _info(row)


def add_generated(store: Store, name: str, private_key_out: Path, *, actor: str) -> ReviewerInfo:
    """Create a key pair, register its public half and write the private half to a new 0600 file."""
    normalise_name(name)
    try:  # create the file first (never overwrite), so a key is never registered without its private half
        fd = os.open(private_key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise RefusedError(f"cannot create {private_key_out}: {exc.strerror or exc}") from exc
    private = Ed25519PrivateKey.generate()
    try:
        info = add(store, name, public_pem(private.public_key()), actor=actor)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return info
    except BaseException:
        os.unlink(private_key_out)
        raise


def get(store: Store, name: str) -> ReviewerInfo:
    norm = normalise_name(name)
    with store.session() as session:
        row = session.get(Reviewer, norm)
        if row is None:
            raise NotFoundError(f"{norm!r} is not a registered reviewer (`drift-pipeline reviewers add`)")
        return _info(row)


def list_reviewers(store: Store) -> list[ReviewerInfo]:
    with store.session() as session:
        return [_info(r) for r in session.execute(select(Reviewer).order_by(Reviewer.name)).scalars()]


def _info(row: Reviewer) -> ReviewerInfo:
    return ReviewerInfo(row.name, row.display_name, row.public_key_pem, row.key_id, row.created_at, row.created_by)
