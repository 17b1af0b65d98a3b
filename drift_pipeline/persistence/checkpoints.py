"""Signed checkpoints of the audit Merkle tree: tree size + root hash + time, signed with Ed25519.

Each checkpoint is kept twice: a row in the store and a write-once object under ``audit/checkpoints/`` in
object storage (never overwritten; S3 Object Lock keeps it from deletion too). The signing key comes from
``DRIFT_PIPELINE_AUDIT_SIGNING_KEY`` (a PEM file); unset, one is generated once under the home folder.
Its public key is added to a keyring (store table and write-once ``audit/keys/<key id>.pem``) so that after
a rotation the checkpoints signed by earlier keys still verify. Key id = sha256 of the raw public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from drift_pipeline.config import Settings
from drift_pipeline.errors import IntegrityError, InvalidInputError
from drift_pipeline.persistence import audit, merkle
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.tables import AuditCheckpoint, AuditSigningKey

ORIGIN = "drift-pipeline audit log"
CHECKPOINTS_PREFIX = "audit/checkpoints"
KEYS_PREFIX = "audit/keys"
DEFAULT_KEY_FILE = Path("keys") / "audit-signing-key.pem"  # under the home folder


@dataclass(frozen=True)
class Checkpoint:
    """What is signed (all but `signature`) and the base64 Ed25519 signature over its canonical JSON."""

    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str = ""

    def signed_bytes(self) -> bytes:
        body = {k: v for k, v in asdict(self).items() if k != "signature"} | {"origin": ORIGIN}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"origin": ORIGIN}

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        """Parse a checkpoint from JSON; anything malformed is an InvalidInputError."""
        try:
            if data.get("origin") != ORIGIN:
                raise ValueError(f"origin is {data.get('origin')!r}")
            cp = cls(
                int(data["tree_size"]),
                str(data["root_hash"]),
                str(data["timestamp"]),
                str(data["key_id"]),
                str(data["signature"]),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"not a drift-pipeline audit checkpoint: {exc}") from None
        return cp

    @property
    def object_name(self) -> str:
        """Content-addressed name: the same checkpoint always maps to the same write-once object."""
        digest = hashlib.sha256(self.signed_bytes() + self.signature.encode()).hexdigest()[:16]
        return f"{CHECKPOINTS_PREFIX}/{self.tree_size:012d}-{digest}.json"

    def label(self) -> str:
        return f"checkpoint of tree size {self.tree_size} signed {self.timestamp}"


# -- keys -------------------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_keys(pems: list[bytes]) -> dict[str, Ed25519PublicKey]:
    """Key id -> key for PEM public keys (or private keys, whose public half is taken)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for n, pem in enumerate(pems, 1):
        try:
            key: Any = serialization.load_pem_public_key(pem)
        except ValueError:
            try:
                key = serialization.load_pem_private_key(pem, password=None).public_key()
            except (ValueError, TypeError):
                raise InvalidInputError(f"public key {n} is not a PEM key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInputError(f"public key {n} is not an Ed25519 key")
        keys[key_id(key)] = key
    return keys


def signing_key_path(settings: Settings | None = None) -> Path:
    settings = settings or Settings.from_env()
    return settings.audit_signing_key or settings.home / DEFAULT_KEY_FILE


def load_signing_key(settings: Settings | None = None) -> Ed25519PrivateKey:
    """The configured key; with none configured, the one under the home folder (generated once, mode 0600)."""
    settings = settings or Settings.from_env()
    path = signing_key_path(settings)
    if settings.audit_signing_key is None and not path.exists():
        _generate_key_file(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise InvalidInputError(f"DRIFT_PIPELINE_AUDIT_SIGNING_KEY: no file {path}") from None
    except (ValueError, TypeError):
        raise InvalidInputError(
            f"DRIFT_PIPELINE_AUDIT_SIGNING_KEY: {path} is not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInputError(f"DRIFT_PIPELINE_AUDIT_SIGNING_KEY: {path} is not an Ed25519 key")
    return key


def _generate_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:  # O_EXCL: two processes starting at once keep one key, the first one written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


# -- checkpoints ------------------------------------------------------------------------------------


def sign(tree_size: int, root: bytes, signing_key: Ed25519PrivateKey) -> Checkpoint:
    unsigned = Checkpoint(
        tree_size, root.hex(), audit.utcnow().isoformat(timespec="seconds"), key_id(signing_key.public_key())
    )
    signature = base64.b64encode(signing_key.sign(unsigned.signed_bytes())).decode("ascii")
    return Checkpoint(unsigned.tree_size, unsigned.root_hash, unsigned.timestamp, unsigned.key_id, signature)


def signature_problem(cp: Checkpoint, keys: dict[str, Ed25519PublicKey]) -> str | None:
    """Why `cp` is not a genuine checkpoint under `keys`, or None."""
    key = keys.get(cp.key_id)
    if key is None:
        return f"is signed by key {cp.key_id[:16]}..., which is not a known public key"
    try:
        key.verify(base64.b64decode(cp.signature, validate=True), cp.signed_bytes())
    except (InvalidSignature, ValueError):
        return "has a signature that does not verify (forged or edited)"
    return None


def create(store: Store, objects: ObjectStore, signing_key: Ed25519PrivateKey | None = None) -> Checkpoint:
    """Sign the tree as it stands and keep the checkpoint in the store and, write-once, in object storage.

    Refused (IntegrityError) when the log does not verify against the checkpoints already kept: signing a
    rewritten log would bless the rewrite."""
    signing_key = signing_key or load_signing_key()
    check = audit.verify(store, objects)
    if not check.ok:
        raise IntegrityError(f"refusing to sign the audit log: {check.problem}")
    public = signing_key.public_key()
    register_key(store, objects, public)
    with store.transaction() as session:
        store.lock_audit_chain(session)  # the tree cannot grow between reading it and recording its size
        rows = [audit.row_leaf(r) for r in audit.rows_in(session)]
        cp = sign(len(rows), merkle.MerkleTree(rows).root(), signing_key)
        objects.write_once(cp.object_name, json.dumps(cp.to_dict(), sort_keys=True).encode("utf-8"))
        session.add(AuditCheckpoint(**asdict(cp), object_path=cp.object_name))
    return cp


def register_key(store: Store, objects: ObjectStore, public: Ed25519PublicKey) -> str:
    """Add a public key to the keyring (store row and write-once object); idempotent."""
    kid, pem = key_id(public), public_pem(public)
    objects.write_once(f"{KEYS_PREFIX}/{kid}.pem", pem)
    with store.transaction() as session:
        if session.get(AuditSigningKey, kid) is None:
            session.add(AuditSigningKey(key_id=kid, public_key=pem.decode("ascii"), added_at=audit.utcnow()))
    return kid


def stored(store: Store) -> list[tuple[int, Checkpoint]]:
    """The store's checkpoints (row id, checkpoint), oldest first."""
    with store.session() as session:
        rows = session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).scalars()
        return [(r.id, Checkpoint(r.tree_size, r.root_hash, r.timestamp, r.key_id, r.signature)) for r in rows]


def in_objects(objects: ObjectStore) -> list[tuple[str, Checkpoint | str]]:
    """Object-storage checkpoints: (name, checkpoint) or (name, why it cannot be read)."""
    found: list[tuple[str, Checkpoint | str]] = []
    for name in objects.list_names(CHECKPOINTS_PREFIX):
        if not name.endswith(".json"):
            continue
        rel = f"{CHECKPOINTS_PREFIX}/{name}"
        try:
            found.append((rel, Checkpoint.from_dict(objects.read_json(rel))))
        except (InvalidInputError, ValueError) as exc:
            found.append((rel, str(exc)))
    return found


def keyring(store: Store, objects: ObjectStore | None = None) -> dict[str, bytes]:
    """Key id -> public PEM of every key in the store's keyring and, when given, the object-storage one."""
    with store.session() as session:
        ring = {k.key_id: k.public_key.encode("ascii") for k in session.execute(select(AuditSigningKey)).scalars()}
    if objects is not None:
        for name in objects.list_names(KEYS_PREFIX):
            if name.endswith(".pem"):
                ring.setdefault(name.removesuffix(".pem"), objects.read_bytes(f"{KEYS_PREFIX}/{name}"))
    return ring


def latest(store: Store) -> Checkpoint | None:
    found = stored(store)
    return found[-1][1] if found else None
