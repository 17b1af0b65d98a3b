"""The evidence bundle: a folder a tenant checks on its own machine, with no database and no other tenant's data.

    evidence.json          the evidence document (`evidence.build`)
    report.json            the stored drift report the answer rests on (canonical JSON: its sha256 is the reference)
    approvals.json         each signed approval with the reviewer's registered public key
    audit.json             the tenant's audit entries with inclusion proofs and the signed checkpoint
    audit_public_key.pem   the public half of the checkpoint signing key (as the operator published it)
    BUNDLE.json            the sha256 of every file above

`verify` re-derives everything it can offline: file hashes, the report's hash against the evidence and the
audit log, every approval's signature, the audit proofs against the checkpoint signed by a key the tenant
trusts (given separately, never taken from the bundle alone), and that an `equivalent` answer really rests
on an anchored report whose intervals show equivalence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from drift_pipeline.detection import verdicts
from drift_pipeline.errors import InvalidInputError, RefusedError
from drift_pipeline.migration import reviewers
from drift_pipeline.persistence import audit_proofs
from drift_pipeline.persistence.db import Store
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.persistence.reports import RECORDED, canonical_json, content_hash

FORMAT = "drift-pipeline evidence bundle 1"
EVIDENCE, REPORT, APPROVALS, AUDIT, AUDIT_KEY, INDEX = (
    "evidence.json",
    "report.json",
    "approvals.json",
    "audit.json",
    "audit_public_key.pem",
    "BUNDLE.json",
)


def write(
    folder: Path,
    evidence: Mapping[str, Any],
    *,
    public_keys: Mapping[str, str],
    audit_bundle: Mapping[str, Any] | None,
    audit_public_key_pem: bytes | None,
) -> list[str]:
    """Write the bundle into the new (or empty) `folder`; `public_keys` maps reviewer key id -> PEM."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise RefusedError(f"{folder} exists and is not an empty folder: nothing is overwritten")
    files: dict[str, bytes] = {EVIDENCE: _pretty(evidence)}
    if evidence.get("drift_report") is not None:
        files[REPORT] = canonical_json(evidence["drift_report"])
    files[APPROVALS] = _pretty(_approvals(evidence, public_keys))
    if audit_bundle is not None and audit_public_key_pem is not None:
        files[AUDIT] = _pretty(audit_bundle)
        files[AUDIT_KEY] = audit_public_key_pem
    index = {"format": FORMAT, "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in {**files, INDEX: _pretty(index)}.items():
        (folder / name).write_bytes(data)
    return sorted([*files, INDEX])


def write_from_store(
    store: Store, folder: Path, evidence: Mapping[str, Any], objects: ObjectStore | None = None
) -> None:
    """Write the bundle of `evidence`, with the registered reviewers' keys and the tenant's audit proofs."""
    keys = {r.key_id: r.public_key_pem for r in reviewers.list_reviewers(store)}
    proofs = audit_proofs.tenant_proof_bundle(store, evidence["tenant_id"], objects=objects)
    key_pem = proofs["public_keys"][proofs["checkpoint"]["key_id"]].encode("ascii")
    write(folder, evidence, public_keys=keys, audit_bundle=proofs, audit_public_key_pem=key_pem)


def verify_offline(folder: Path, trusted_keys_pem: list[bytes]) -> list[str]:
    """`verify` with the audit log's own offline proof check."""
    return verify(folder, trusted_keys_pem, audit_proofs.verify_tenant_bundle)


def verify(
    folder: Path,
    trusted_keys_pem: list[bytes],
    verify_audit: Callable[[dict[str, Any], list[bytes]], list[str]],
) -> list[str]:
    """Every problem found (empty: the bundle verifies). Reads only `folder`; no database. `verify_audit` is
    the audit log's offline proof check (`persistence.audit_proofs.verify_tenant_bundle`)."""
    if not trusted_keys_pem:
        raise RefusedError("evidence verify needs --public-key: the audit signing key the operator published")
    files = _read_files(folder)
    problems = _index_problems(files)
    evidence = _json(files, EVIDENCE)
    report = _json(files, REPORT) if REPORT in files else None
    problems += _report_problems(evidence, report)
    problems += _approval_problems(evidence, _json(files, APPROVALS))
    problems += _audit_problems(files, evidence, report, trusted_keys_pem, verify_audit)
    return problems


# ------------------------------------------------------------------------------------------- internals


def _approvals(evidence: Mapping[str, Any], public_keys: Mapping[str, str]) -> list[dict[str, Any]]:
    out = []
    for m in evidence.get("migrations", []):
        review = m.get("review") or {}
        signed = review.get("approval")
        if signed:
            kid = signed.get("key_id")
            out.append({"migration_id": m["id"], "approval": signed, "key_id": kid, "public_key_pem": public_keys[kid]})
    return out


def _read_files(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is not an evidence bundle folder")
    files = {}
    for name in (EVIDENCE, REPORT, APPROVALS, AUDIT, AUDIT_KEY, INDEX):
        if (folder / name).is_file():
            files[name] = (folder / name).read_bytes()
    for needed in (INDEX, EVIDENCE, APPROVALS):
        if needed not in files:
            raise RefusedError(f"{folder} is not a complete evidence bundle: {needed} is missing")
    return files


def _json(files: Mapping[str, bytes], name: str) -> Any:
    try:
        return json.loads(files[name])
    except (UnicodeDecodeError, ValueError) as exc:
        raise RefusedError(f"{name} in the bundle is not JSON: {exc}") from exc


def _index_problems(files: Mapping[str, bytes]) -> list[str]:
    index = _json(files, INDEX)
    listed = index.get("files", {}) if isinstance(index, dict) else {}
    problems = [f"{name} is listed in {INDEX} but missing" for name in listed if name not in files]
    problems += [f"{name} is in the bundle but not listed in {INDEX}" for name in files if name not in (*listed, INDEX)]
    for name, want in listed.items():
        if name in files and hashlib.sha256(files[name]).hexdigest() != want:
            problems.append(f"{name} was changed after the bundle was written (sha256 differs)")
    return problems


def _report_problems(evidence: Mapping[str, Any], report: Any) -> list[str]:
    ref, answer = evidence.get("drift_report_ref"), evidence.get("answer") or {}
    if report is None:
        if ref is not None or evidence.get("drift_report") is not None:
            return ["the evidence names a drift report but report.json is missing"]
        return ["the answer is 'equivalent' without any drift report"] if answer.get("verdict") == "equivalent" else []
    problems = []
    sha = content_hash(report)
    if ref is None or ref.get("sha256") != sha:
        problems.append("report.json is not the report the evidence references (sha256 differs)")
    if evidence.get("drift_report") != report:
        problems.append("the drift report inside evidence.json differs from report.json")
    if answer.get("verdict") == "equivalent":
        if report.get("candidate") != (evidence.get("current") or {}).get("pinned_model_id"):
            problems.append("the answer is 'equivalent' but the report is not about the pinned model")
        if not verdicts.shows_equivalence(report):
            problems.append("the answer is 'equivalent' but the report's intervals do not show equivalence")
    return problems


def _approval_problems(evidence: Mapping[str, Any], entries: Any) -> list[str]:
    problems = []
    reviews = {m.get("id"): (m.get("review") or {}) for m in evidence.get("migrations", [])}
    for item in entries if isinstance(entries, list) else []:
        signed, mid = item.get("approval") or {}, item.get("migration_id")
        where = f"the approval of migration {mid}"
        try:
            key = reviewers.load_public_key(str(item.get("public_key_pem", "")).encode("ascii"), f"{where}'s key")
            key.verify(
                base64.b64decode(signed.get("signature", ""), validate=True), canonical_json(signed["statement"])
            )
        except (InvalidSignature, InvalidInputError, binascii.Error, ValueError, KeyError, TypeError):
            problems.append(f"{where} does not verify with the reviewer's public key")
            continue
        if reviewers.key_id(key) != signed.get("key_id") or signed["statement"].get("tenant_id") != evidence.get(
            "tenant_id"
        ):
            problems.append(f"{where} names another key or tenant")
        review = reviews.get(mid, {})
        if review.get("approval_sha256") != content_hash(
            {"statement": signed["statement"], "signature": signed["signature"]}
        ):
            problems.append(f"{where} is not the one the evidence records")
    signed_ids = {i.get("migration_id") for i in entries} if isinstance(entries, list) else set()
    for mid, review in reviews.items():
        if review.get("approval") and mid not in signed_ids:
            problems.append(f"the approval of migration {mid} is missing from approvals.json")
    return problems


def _audit_problems(
    files: Mapping[str, bytes],
    evidence: Mapping[str, Any],
    report: Any,
    trusted: list[bytes],
    verify_audit: Callable[[dict[str, Any], list[bytes]], list[str]],
) -> list[str]:
    if AUDIT not in files or AUDIT_KEY not in files:
        return ["the bundle carries no audit proofs (audit.json / audit_public_key.pem): the trail is unproven"]
    if not any(_same_key(files[AUDIT_KEY], k) for k in trusted):
        return ["the bundle's audit public key is not the one you trust (--public-key): wrong or replaced key"]
    bundle = _json(files, AUDIT)
    problems = [f"audit: {p}" for p in verify_audit(bundle, trusted)]
    entries = bundle.get("entries", []) if isinstance(bundle, dict) else []
    recorded = {(e.get("after") or {}).get("sha256") for e in entries if e.get("action") == RECORDED}
    if report is not None and content_hash(report) not in recorded:
        problems.append("the drift report's hash is not in the tenant's proven audit entries")
    approved = {(e.get("after") or {}).get("approval_sha256") for e in entries}
    for m in evidence.get("migrations", []):
        sha = (m.get("review") or {}).get("approval_sha256")
        if sha and sha not in approved:
            problems.append(f"the approval of migration {m.get('id')} is not in the tenant's proven audit entries")
    return problems


def _same_key(a: bytes, b: bytes) -> bool:
    try:
        return reviewers.public_pem(reviewers.load_public_key(a)) == reviewers.public_pem(reviewers.load_public_key(b))
    except InvalidInputError:
        return False


def _pretty(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
