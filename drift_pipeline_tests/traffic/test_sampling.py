"""Stratified sampling: quotas, determinism, near-duplicates, consent, tenant isolation, scrubbing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.records import TrafficRecord
from drift_pipeline.traffic.sampling import (
    SamplingPolicy,
    TenantSampling,
    allocate,
    sample_from_storage,
    sample_tenant_day,
)

DAY = "2024-05-01"


def _frame(tenant: str, n: int, strata: dict[tuple[str, str], int] | None = None, day: str = DAY) -> pd.DataFrame:
    rows, i = [], 0
    for (wf, step), count in (strata or {("refund", "draft"): n}).items():
        for _ in range(count):
            text = f"{tenant} customer {i} asks about case number {i * 7919} and mail {tenant}{i}@example.com"
            rows.append(
                TrafficRecord(
                    tenant_id=tenant,
                    agent_id="support",
                    timestamp=f"{day}T{i % 24:02d}:{i % 60:02d}:00+00:00",
                    messages=json.dumps([{"role": "user", "content": text}]),
                    workflow_type=wf,
                    agent_step=step,
                ).to_row()
            )
            i += 1
    return pd.DataFrame(rows)


STRATA = {("refund", "draft"): 120, ("refund", "send"): 30, ("faq", "answer"): 6, ("billing", "lookup"): 2}


def test_allocation_is_proportional_within_min_and_max():
    quota = allocate(
        {"big": 120, "mid": 30, "small": 6, "tiny": 2}, SamplingPolicy(target=40, min_per_stratum=4, max_per_stratum=25)
    )
    assert quota == {"big": 25, "mid": 9, "small": 4, "tiny": 2}
    assert allocate({"a": 3, "b": 1}, SamplingPolicy(target=100)) == {"a": 3, "b": 1}


def test_sample_is_stratified_deterministic_and_scrubbed():
    frame = _frame("acme", 0, STRATA)
    policy = SamplingPolicy(target=40, min_per_stratum=4, max_per_stratum=25, seed=3)
    result = sample_tenant_day(frame, TenantSampling("acme"), DAY, policy)
    assert result.status == "sampled" and result.n_input == 158
    counts = result.frame.groupby("stratum").size().to_dict()
    assert counts == {"billing/lookup": 2, "faq/answer": 4, "refund/draft": 25, "refund/send": 9}
    assert (
        (result.frame["stratum_weight"] * result.frame["stratum_sampled"])
        .round()
        .eq(result.frame["stratum_size"])
        .all()
    )
    assert not result.frame["messages"].str.contains("@example.com").any()
    assert result.frame["messages"].str.contains("<EMAIL>").all()
    shuffled = sample_tenant_day(frame.sample(frac=1, random_state=1), TenantSampling("acme"), DAY, policy)
    assert list(shuffled.frame["record_id"]) == list(result.frame["record_id"])
    other_seed = sample_tenant_day(
        frame, TenantSampling("acme"), DAY, SamplingPolicy(target=40, min_per_stratum=4, max_per_stratum=25, seed=4)
    )
    assert set(other_seed.frame["record_id"]) != set(result.frame["record_id"])


def test_near_duplicates_are_collapsed_but_distinct_numbers_are_kept():
    texts = [
        "How do I reset my password for the customer portal please?",
        "how do I reset my password for the customer  portal, please",
        "HOW DO I RESET MY PASSWORD FOR THE CUSTOMER PORTAL PLEASE!!",
        "Is 17077 a prime number? Think step by step and answer yes or no.",
        "Is 17071 a prime number? Think step by step and answer yes or no.",
        "Write a haiku about autumn leaves falling on a quiet lake.",
    ]
    rows = [
        TrafficRecord(
            tenant_id="acme",
            agent_id="a",
            timestamp=f"{DAY}T00:00:0{i}+00:00",
            messages=json.dumps([{"role": "user", "content": t}]),
        ).to_row()
        for i, t in enumerate(texts)
    ]
    result = sample_tenant_day(pd.DataFrame(rows), TenantSampling("acme"), DAY, SamplingPolicy(target=10))
    assert result.n_after_dedup == 4
    prompts = [json.loads(m)[0]["content"].lower() for m in result.frame["messages"]]
    assert sum("reset my password" in p for p in prompts) == 1
    assert sum("prime" in p for p in prompts) == 2
    assert result.frame["near_duplicates"].sum() == 2


def test_no_consent_means_no_sample_and_says_so(local_objects: ObjectStore):
    local_objects.write_batch("traffic", "acme", DAY, _frame("acme", 10))
    result = sample_from_storage(local_objects, TenantSampling("acme", sampling_consent=False), DAY)
    assert result.status == "skipped" and "consent" in result.reason and result.frame.empty


def test_nothing_from_one_tenant_reaches_another(objects: ObjectStore):
    objects.write_batch("traffic", "acme", DAY, _frame("acme", 30))
    objects.write_batch("traffic", "globex", DAY, _frame("globex", 30))
    result = sample_from_storage(objects, TenantSampling("acme"), DAY, SamplingPolicy(target=100))
    assert len(result.frame) == 30 and set(result.frame["tenant_id"]) == {"acme"}
    assert not result.frame["messages"].str.contains("globex").any()
    mixed = pd.concat([_frame("acme", 3), _frame("globex", 3)])
    with pytest.raises(InvalidInputError, match="other tenants"):
        sample_tenant_day(mixed, TenantSampling("acme"), DAY)


def test_tenant_patterns_are_applied_and_other_days_ignored():
    frame = pd.concat([_frame("acme", 5), _frame("acme", 5, day="2024-05-02")])
    frame["response_text"] = "ticket ACME-4411 handled"
    result = sample_tenant_day(frame, TenantSampling("acme", pii_patterns={"ticket": r"ACME-\d+"}), DAY)
    assert result.n_input == 5
    assert set(result.frame["response_text"]) == {"ticket <CUSTOM:ticket> handled"}
    empty = sample_tenant_day(frame, TenantSampling("acme"), "2024-06-01")
    assert empty.status == "empty" and empty.frame.empty
