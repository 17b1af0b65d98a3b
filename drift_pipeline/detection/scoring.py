"""Scoring: behavioural dimensions x paired responses -> per-pair values and a drift verdict.

`score_pairs` is the entry point used by `compare` and the Dagster assets: its `per_pair` table becomes
the `divergence_scores` asset and its `report` the structured diff (`report.py`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from drift_pipeline.detection import dimensions as dims
from drift_pipeline.detection import distribution as dist
from drift_pipeline.detection.dimensions._usage import USAGE_FIELDS
from drift_pipeline.detection.dimensions.base import PairContext, ScoringEnv
from drift_pipeline.detection.embeddings import Embedder, from_settings
from drift_pipeline.detection.statistics import (
    Correction,
    DimensionResult,
    DimensionSpec,
    NoiseFloor,
    adjust_p,
    evaluate,
)
from drift_pipeline.errors import InvalidInputError
from drift_pipeline.traffic.records import last_user_message

REQUIRED_COLUMNS = ("pair_id", "baseline_text", "candidate_text")
# The reference answer's column, by the names sources use for it (first present wins).
REFERENCE_COLUMNS = ("reference", "ref_answer", "expected_answer", "golden_label")
PER_PAIR_COLUMNS = ("pair_id", "dimension", "kind", "baseline_value", "candidate_value", "difference")


@dataclass
class ScoreResult:
    """`per_pair`: one row per pair and dimension (NaN where it does not apply); `report`: the JSON diff."""

    per_pair: pd.DataFrame
    results: list[DimensionResult]
    report: dict[str, Any]
    quarantined: list[dict[str, str]] = field(default_factory=list)

    @property
    def drift_detected(self) -> bool:
        return bool(self.report["drift_detected"])


def specs_for(names: Sequence[str] | None = None) -> list[DimensionSpec]:
    """Statistics specs of the selected (default: all) dimensions."""
    return [DimensionSpec(d.name, d.kind, d.span) for d in dims.select(list(names) if names else None)]


def score_pairs(
    pairs: pd.DataFrame,
    *,
    baseline: str,
    candidate: str,
    threshold: float,
    alpha: float = 0.01,
    response_schema: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    noise_floor: NoiseFloor | None = None,
    correction: Correction = "holm",
    dimensions: Sequence[str] | None = None,
    embedder: Embedder | None = None,
    tenant_id: str | None = None,
    agent_id: str | None = None,
    n_examples: int = 10,
    progress: bool = False,
    distribution_permutations: int = dist.DEFAULT_PERMUTATIONS,
) -> ScoreResult:
    """Score paired responses and decide, per dimension, whether the candidate drifted from the baseline.

    `pairs` has columns pair_id, baseline_text, candidate_text and optionally prompt and/or messages
    (JSON), baseline_tool_calls, candidate_tool_calls, tools, response_format (JSON strings; "null" ok),
    reference (or ref_answer / expected_answer / golden_label), and baseline_/candidate_ + latency_ms,
    ttft_ms, prompt_tokens, completion_tokens, cost_usd.
    With `similarity` selected, the paired distribution test (`distribution.py`) joins the drift family
    (`distribution_permutations=0` turns it off).
    """
    from drift_pipeline.detection.report import build_report

    contexts, quarantined = to_contexts(pairs, response_schema=response_schema, tools=tools)
    if not contexts:
        raise InvalidInputError(
            "no valid pairs to score" + (f" ({len(quarantined)} quarantined)" if quarantined else "")
        )
    specs = specs_for(dimensions)
    if embedder is None and any(s.kind == "similarity" for s in specs):
        embedder = from_settings()  # one cache for the similarity dimension and the distribution test
    per_pair = score_contexts(contexts, dimensions=dimensions, embedder=embedder, progress=progress)
    test = _distribution_test(contexts, specs, embedder, distribution_permutations)
    results, not_applicable = evaluate(
        per_pair, specs, threshold=threshold, alpha=alpha, noise_floor=noise_floor, correction=correction,
        extra_p_values=[test.p_value] if test else [],
    )  # fmt: skip
    distribution = _decide_distribution(test, results, alpha, correction, distribution_permutations)
    report = build_report(
        results,
        not_applicable,
        per_pair,
        contexts,
        baseline=baseline,
        candidate=candidate,
        threshold=threshold,
        alpha=alpha,
        correction=correction,
        noise_floor=noise_floor,
        tenant_id=tenant_id,
        agent_id=agent_id,
        quarantined=quarantined,
        n_examples=n_examples,
        distribution=distribution,
    )
    if embedder is not None:  # which vectors the similarities were computed with (`embeddings.minilm_id`)
        report["embedding_backend"] = embedder.backend.id
    return ScoreResult(per_pair=per_pair, results=results, report=report, quarantined=quarantined)


def _distribution_test(
    contexts: Sequence[PairContext], specs: Sequence[DimensionSpec], embedder: Embedder | None, permutations: int
) -> dist.DistributionTest | None:
    if permutations <= 0 or embedder is None or not any(s.kind == "similarity" for s in specs):
        return None
    return dist.for_pairs(
        [c.baseline_text for c in contexts], [c.candidate_text for c in contexts], embedder, permutations=permutations
    )


def _decide_distribution(
    test: dist.DistributionTest | None,
    results: Sequence[DimensionResult],
    alpha: float,
    correction: Correction,
    permutations: int,
) -> dict[str, Any]:
    """The report's `distribution` entry: the test with its p-value adjusted in the dimensions' family."""
    if test is None:
        reason = "turned off (0 permutations)" if permutations <= 0 else "similarity dimension not selected"
        return dist.not_applicable(reason)
    family = [r.p_value for r in results if r.p_value is not None] + [test.p_value]
    decided = dist.decide(test, p_adjusted=adjust_p(family, correction)[-1], alpha=alpha, tests=len(family))
    return {"applicable": True, **decided.to_dict()}


def measure_noise_floor(
    pairs: pd.DataFrame,
    *,
    response_schema: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    dimensions: Sequence[str] | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
) -> NoiseFloor:
    """Noise floor from pinned-vs-pinned pairs (two replays of the pinned model on the same inputs)."""
    contexts, _ = to_contexts(pairs, response_schema=response_schema, tools=tools)
    if not contexts:
        raise InvalidInputError("no valid pinned-vs-pinned pairs to measure a noise floor from")
    per_pair = score_contexts(contexts, dimensions=dimensions, embedder=embedder, progress=progress)
    return NoiseFloor.measure(per_pair, specs_for(dimensions))


def score_contexts(
    contexts: Sequence[PairContext],
    *,
    dimensions: Sequence[str] | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """The long per-pair table: pair_id, dimension, kind, baseline_value, candidate_value, difference."""
    env = ScoringEnv(embedder=embedder, progress=progress)
    selected = dims.select(list(dimensions) if dimensions else None)
    if embedder is not None and any(d.name == "similarity" for d in selected):
        embedder.prefetch_pairs(
            [c.baseline_text for c in contexts], [c.candidate_text for c in contexts], progress=progress
        )
    try:  # The dimensions that embed nothing first: they run while the prefetch embeds.
        by_name = {d.name: d.score(contexts, env) for d in sorted(selected, key=lambda d: d.embeds)}
    finally:
        if embedder is not None:
            embedder.prefetch.cancel()  # a no-op unless a dimension failed before waiting for it
    scored = [by_name[d.name] for d in selected]
    n = len(contexts)
    short = [d.name for d, pairs in zip(selected, scored, strict=True) if len(pairs) != n]
    if short:  # flattened below: a dimension that skipped a pair would shift every later value
        raise RuntimeError(f"dimension(s) {', '.join(short)} did not score every pair")
    # One frame from flat float arrays (None -> NaN): a frame per dimension and a concat cost more than scoring.
    values = np.array([v for pairs in scored for pair in pairs for v in pair], dtype=float).reshape(-1, 2)
    per_pair = pd.DataFrame(
        {
            "pair_id": [c.pair_id for c in contexts] * len(selected),
            "dimension": [d.name for d in selected for _ in range(n)],
            "kind": [d.kind for d in selected for _ in range(n)],
            "baseline_value": values[:, 0],
            "candidate_value": values[:, 1],
        }
    )
    per_pair["difference"] = values[:, 1] - values[:, 0]
    return per_pair


def to_contexts(
    pairs: pd.DataFrame, *, response_schema: dict[str, Any] | None, tools: list[dict[str, Any]] | None
) -> tuple[list[PairContext], list[dict[str, str]]]:
    """Validate the pairs table; rows that cannot be scored are quarantined with a reason, not dropped."""
    missing = [c for c in REQUIRED_COLUMNS if c not in pairs.columns]
    if missing:
        raise InvalidInputError(f"pairs table lacks column(s) {', '.join(missing)}")
    if "prompt" not in pairs.columns and "messages" not in pairs.columns:
        raise InvalidInputError("pairs table needs a prompt or a messages column")
    if response_schema is not None:
        _check_schema(response_schema)
    contexts: list[PairContext] = []
    quarantined: list[dict[str, str]] = []
    seen: set[str] = set()
    for row in pairs.to_dict("records"):
        pair_id = str(row["pair_id"])
        if pair_id in seen:
            quarantined.append({"pair_id": pair_id, "reason": "duplicate pair_id"})
            continue
        seen.add(pair_id)
        try:
            contexts.append(_context(row, pair_id, response_schema, tools))
        except ValueError as exc:
            quarantined.append({"pair_id": pair_id, "reason": str(exc)})
    return contexts, quarantined


def _context(
    row: dict[str, Any], pair_id: str, response_schema: dict[str, Any] | None, tools: list[dict[str, Any]] | None
) -> PairContext:
    prompt = _text(row.get("prompt"))
    if not prompt and row.get("messages") is not None:
        prompt = last_user_message(_text(row.get("messages")))
    row_tools = _json(row, "tools")
    return PairContext(
        pair_id=pair_id,
        prompt=prompt,
        baseline_text=_text(row.get("baseline_text")),
        candidate_text=_text(row.get("candidate_text")),
        baseline_tool_calls=_json(row, "baseline_tool_calls"),
        candidate_tool_calls=_json(row, "candidate_tool_calls"),
        response_schema=response_schema,
        tools=tools if tools is not None else row_tools,
        response_format=_json(row, "response_format"),
        reference=next((_text(row[c]) for c in REFERENCE_COLUMNS if _text(row.get(c)).strip()), None),
        baseline_usage=_usage(row, "baseline_"),
        candidate_usage=_usage(row, "candidate_"),
    )


def _usage(row: dict[str, Any], prefix: str) -> dict[str, float] | None:
    """baseline_latency_ms, ... -> {"latency_ms": ...}; unparseable values are left for the dimension to refuse."""
    found = {f: row[prefix + f] for f in USAGE_FIELDS if row.get(prefix + f) is not None}
    return found or None


def _text(value: Any) -> str:
    """Missing responses (NaN/None) are empty responses: an empty answer is itself a behaviour."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _json(row: dict[str, Any], column: str) -> Any:
    raw = row.get(column)
    if raw is None or (isinstance(raw, float) and raw != raw) or raw == "":
        return None
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError(f"{column} is not valid JSON") from None


def _check_schema(schema: dict[str, Any]) -> None:
    import jsonschema

    from drift_pipeline.detection.dimensions.schema_compliance import validator_for

    try:
        validator_for(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidInputError(f"response schema is not valid JSON Schema: {exc.message}") from exc
