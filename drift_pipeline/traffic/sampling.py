"""Stratified, deduplicated, scrubbed samples of one tenant's traffic for one day.

Strata are ``workflow_type x agent_step``. Near-duplicate prompts are collapsed inside each stratum
(normalised text, character 5-shingles, MinHash with LSH banding to find candidates, exact Jaccard
to confirm; the default threshold 0.9 collapses re-phrasings in case, spacing, punctuation or a word).
Prompts whose numbers differ are never collapsed: in templated prompts the numbers are the task
("Is 17077 prime?" vs "Is 17071 prime?" are two tests, though their text is 90% the same)., then each stratum gets a share of `target` proportional to its size, clamped to
[`min_per_stratum`, `max_per_stratum`] (never more than it has). Selection is a seeded random draw
over rows sorted by record id, so the same input and seed give the same sample whatever the row
order. Tenants without sampling consent are never read or sampled: the result says so.

MinHash is hand-written (numpy, ~30 lines): no kept MinHash library (datasketch) is installed.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.identifiers import check_identifier
from drift_pipeline.persistence.objects import ObjectStore, day_str
from drift_pipeline.traffic.privacy import Scrubber
from drift_pipeline.traffic.records import COLUMNS, last_user_message, read_traffic

STRATUM_COLUMNS = ("stratum", "stratum_size", "stratum_sampled", "stratum_weight", "near_duplicates")
_MERSENNE = (1 << 61) - 1
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class SamplingPolicy:
    """How many records to keep per tenant-day and how to collapse near duplicates."""

    target: int = 200
    min_per_stratum: int = 5
    max_per_stratum: int = 50
    seed: int = 0
    near_duplicate_threshold: float = 0.9  # Jaccard of character 5-shingles
    num_perm: int = 64
    bands: int = 16

    def __post_init__(self) -> None:
        if self.target < 1 or self.min_per_stratum < 0 or self.max_per_stratum < max(1, self.min_per_stratum):
            raise InvalidInputError("sampling policy needs target >= 1 and 0 <= min_per_stratum <= max_per_stratum")
        if not 0 < self.near_duplicate_threshold <= 1:
            raise InvalidInputError("near_duplicate_threshold must be in (0, 1]")
        if self.num_perm % self.bands:
            raise InvalidInputError("num_perm must be a multiple of bands")


@dataclass(frozen=True)
class TenantSampling:
    """The tenant settings sampling needs (a subset of `tenants.TenantInfo`)."""

    tenant_id: str
    sampling_consent: bool = True
    pii_patterns: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, info: Any) -> TenantSampling:
        """From any object with these attributes (e.g. `tenants.TenantInfo`)."""
        return cls(info.tenant_id, bool(info.sampling_consent), dict(info.pii_patterns or {}))


@dataclass
class SampleResult:
    """A tenant-day sample: `status` is 'sampled', 'empty' or 'skipped' (with the `reason`)."""

    tenant_id: str
    day: str
    status: str
    reason: str
    frame: pd.DataFrame
    n_input: int = 0
    n_after_dedup: int = 0
    strata: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "day": self.day,
            "status": self.status,
            "reason": self.reason,
            "n_input": self.n_input,
            "n_after_dedup": self.n_after_dedup,
            "n_sampled": len(self.frame),
            "strata": self.strata,
        }


def empty_sample_frame() -> pd.DataFrame:
    return pd.DataFrame(columns=[*COLUMNS, *STRATUM_COLUMNS])


def sample_tenant_day(
    records: pd.DataFrame,
    tenant: TenantSampling,
    day: str | date,
    policy: SamplingPolicy | None = None,
) -> SampleResult:
    """The stratified, deduplicated, scrubbed sample of `records` (one tenant's traffic) for `day`.

    `records` must hold only this tenant's rows: another tenant's row is a bug upstream and raises.
    """
    policy = policy or SamplingPolicy()
    tenant_id, day = check_identifier(tenant.tenant_id, "tenant id"), day_str(day)
    if not tenant.sampling_consent:
        reason = f"tenant {tenant_id} has not given sampling consent: nothing sampled"
        return SampleResult(tenant_id, day, "skipped", reason, empty_sample_frame())
    if len(records) and (records["tenant_id"] != tenant_id).any():
        others = sorted(set(records["tenant_id"]) - {tenant_id})
        raise InvalidInputError(f"records for tenant {tenant_id} include other tenants' rows: {others}")
    frame = records[records["timestamp"].astype(str).str[:10] == day] if len(records) else records
    if frame.empty:
        return SampleResult(
            tenant_id, day, "empty", f"no traffic for tenant {tenant_id} on {day}", empty_sample_frame()
        )
    frame = frame.drop_duplicates("record_id").sort_values("record_id", kind="stable").reset_index(drop=True)
    frame["stratum"] = frame["workflow_type"].astype(str) + "/" + frame["agent_step"].astype(str)
    kept = _collapse_near_duplicates(frame, policy)
    sizes = kept.groupby("stratum").size().to_dict()
    quotas = allocate(sizes, policy)
    picked = []
    for stratum in sorted(quotas):
        rows = kept[kept["stratum"] == stratum]
        rng = np.random.default_rng([policy.seed, _stable_hash(f"{tenant_id}|{day}|{stratum}")])
        chosen = rng.choice(len(rows), size=quotas[stratum], replace=False) if quotas[stratum] else []
        part = rows.iloc[sorted(chosen)].copy()
        part["stratum_size"] = sizes[stratum]
        part["stratum_sampled"] = quotas[stratum]
        part["stratum_weight"] = sizes[stratum] / quotas[stratum] if quotas[stratum] else 0.0
        picked.append(part)
    sample = pd.concat(picked, ignore_index=True) if picked else empty_sample_frame()
    sample = Scrubber(tenant.pii_patterns).scrub_frame(sample)[[*COLUMNS, *STRATUM_COLUMNS]]
    strata = {s: {"size": int(sizes[s]), "sampled": int(quotas[s])} for s in sorted(sizes)}
    return SampleResult(tenant_id, day, "sampled", "", sample.reset_index(drop=True), len(frame), len(kept), strata)


def sample_from_storage(
    objects: ObjectStore,
    tenant: TenantSampling,
    day: str | date,
    policy: SamplingPolicy | None = None,
) -> SampleResult:
    """Read one tenant's committed traffic for `day` (only its own prefix) and sample it."""
    tenant_id, day = check_identifier(tenant.tenant_id, "tenant id"), day_str(day)
    if not tenant.sampling_consent:  # do not even read the data
        return sample_tenant_day(pd.DataFrame(columns=list(COLUMNS)), tenant, day, policy)
    return sample_tenant_day(read_traffic(objects, tenant_id, day, day), tenant, day, policy)


def tenant_sampling_from_store(store: Any, tenant_id: str) -> TenantSampling:
    """The tenant's consent and PII patterns from `drift_pipeline.versioning.tenants.get_tenant`."""
    from drift_pipeline.versioning.tenants import get_tenant

    return TenantSampling.of(get_tenant(store, tenant_id))


def allocate(sizes: Mapping[str, int], policy: SamplingPolicy) -> dict[str, int]:
    """Per-stratum sample sizes: proportional to size, clamped to min/max (and the stratum's size).

    When clamps leave part of `target` unused, it goes to the strata furthest below their proportional
    share; minimums win over `target` (many small strata can make the sample larger than `target`).
    """
    total = sum(sizes.values())
    if not total:
        return {}
    lo = {s: min(n, policy.min_per_stratum) for s, n in sizes.items()}
    hi = {s: min(n, policy.max_per_stratum) for s, n in sizes.items()}
    raw = {s: policy.target * n / total for s, n in sizes.items()}
    quota = {s: max(lo[s], min(hi[s], int(raw[s]))) for s in sizes}
    # Hand out what the clamps left over, one at a time, to the stratum furthest below its share.
    left = policy.target - sum(quota.values())
    while left > 0:
        open_strata = [s for s in sizes if quota[s] < hi[s]]
        if not open_strata:
            break
        best = max(open_strata, key=lambda s: (raw[s] - quota[s], sizes[s], s))
        quota[best] += 1
        left -= 1
    return quota


# -- near-duplicate collapsing ---------------------------------------------------------------------------


def normalise_prompt(text: str) -> str:
    """Case-folded, accent-stripped words joined by single spaces."""
    text = unicodedata.normalize("NFKD", text or "").casefold()
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_WORD.findall(text))


def shingles(text: str, k: int = 5) -> set[str]:
    """Character k-grams of the normalised text (the whole text when shorter)."""
    norm = normalise_prompt(text)
    if len(norm) <= k:
        return {norm}
    return {norm[i : i + k] for i in range(len(norm) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _collapse_near_duplicates(frame: pd.DataFrame, policy: SamplingPolicy) -> pd.DataFrame:
    """Keep the first row (by record id) of each group of near-duplicate prompts, per stratum."""
    a, b = _minhash_params(policy.num_perm, policy.seed)
    rows_per_band = policy.num_perm // policy.bands
    keep: list[int] = []
    dups: dict[int, int] = {}
    for _, group in frame.groupby("stratum", sort=True):
        buckets: dict[tuple[int, bytes], list[int]] = {}  # LSH band (+ the prompt's numbers) -> rows
        sets: dict[int, set[str]] = {}
        for idx, messages in zip(group.index, group["messages"], strict=True):
            prompt = last_user_message(messages) or str(messages)
            sh = shingles(prompt)
            signature = _minhash(sh, a, b)
            numbers = " ".join(_NUMBER.findall(prompt)).encode()
            keys = [
                (i, numbers + b"|" + signature[i * rows_per_band : (i + 1) * rows_per_band].tobytes())
                for i in range(policy.bands)
            ]
            candidates = {c for key in keys for c in buckets.get(key, ())}
            match = next(
                (c for c in sorted(candidates) if jaccard(sh, sets[c]) >= policy.near_duplicate_threshold), None
            )
            if match is not None:
                dups[match] += 1
                continue
            keep.append(idx)
            dups[idx] = 0
            sets[idx] = sh
            for key in keys:
                buckets.setdefault(key, []).append(idx)
    kept = frame.loc[sorted(keep)].copy()
    kept["near_duplicates"] = [dups[i] for i in kept.index]
    return kept


def _minhash_params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0x5EED])
    a = rng.integers(1, _MERSENNE, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, _MERSENNE, size=num_perm, dtype=np.uint64)
    return a, b


def _minhash(items: set[str], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    hashes = np.array([_stable_hash(s) for s in sorted(items)], dtype=np.uint64)
    # (a*x + b) mod p in Python ints would be slow; uint64 wrap-around is a fine universal hash here.
    return ((np.outer(hashes, a) + b) % np.uint64(_MERSENNE)).min(axis=0)


def _stable_hash(text: str) -> int:
    """A process-independent 32-bit hash (Python's hash() is salted per process)."""
    return zlib.crc32(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest())
