"""HMAC-SHA256 signatures for webhook alerts, over ``"{timestamp}.{body}"`` so a body cannot be replayed later."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Drift-Signature"
TIMESTAMP_HEADER = "X-Drift-Timestamp"


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers for a signed webhook body: the timestamp and ``sha256=<hex>`` over ``"{ts}.{body}"``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode("utf-8"), ts.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: f"sha256={digest}", "Content-Type": "application/json"}


def verify_signature(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """True when `signature` matches `body` and `timestamp` is within `tolerance_s` (replay protection)."""
    if not signature or not timestamp or not signature.startswith("sha256=") or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp=int(timestamp))[SIGNATURE_HEADER]
    return hmac.compare_digest(expected, signature)
