"""Comparison of recorded outputs: pair two versions' responses by prompt id and score the pairs.

Reads LLMDrift evaluation CSVs (columns model, id, query, answer) or traffic records (`records.py`
columns) from JSONL, Parquet or CSV.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from drift_pipeline.detection import embeddings
from drift_pipeline.detection.embeddings import Embedder
from drift_pipeline.errors import InvalidInputError, NotFoundError
from drift_pipeline.traffic.records import last_user_message

if TYPE_CHECKING:
    from drift_pipeline.detection.scoring import ScoreResult

Format = Literal["llmdrift", "jsonl", "parquet", "csv"]
FORMATS: tuple[str, ...] = ("llmdrift", "jsonl", "parquet", "csv")
# Which column names the version a record belongs to, in order of preference.
VERSION_COLUMNS = ("model", "served_model", "pinned_model_id", "requested_model")
NORMALISED = ("version", "prompt_id", "prompt", "response_text", "tool_calls", "tools", "response_format")
# Optional columns carried to scoring when a source has them (correctness, latency and usage dimensions).
OPTIONAL = ("reference", "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "cost_usd")
# Source column names for each optional column, first present wins.
OPTIONAL_SOURCES = {
    "reference": ("reference", "ref_answer", "expected_answer", "golden_label"),
    "latency_ms": ("latency_ms",),
    "ttft_ms": ("ttft_ms", "time_to_first_token_ms"),
    "prompt_tokens": ("prompt_tokens",),
    "completion_tokens": ("completion_tokens",),
    "cost_usd": ("cost_usd", "cost"),
}


@dataclass(frozen=True)
class Pairing:
    """How the records were paired: nothing is dropped without being counted here."""

    baseline_rows: int
    candidate_rows: int
    paired: int
    unpaired_baseline: int
    unpaired_candidate: int
    duplicates: int

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def load_records(path: str | Path, fmt: Format) -> pd.DataFrame:
    """Records normalised to the NORMALISED columns plus those of OPTIONAL the source carries."""
    path = Path(path)
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
    if not path.exists():
        raise NotFoundError(f"records file {str(path)!r} does not exist")
    try:
        if fmt == "llmdrift":
            return _from_llmdrift(pd.read_csv(path))
        if fmt == "jsonl":
            raw = pd.read_json(path, lines=True, dtype=False)
        elif fmt == "parquet":
            raw = pd.read_parquet(path)
        else:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {str(path)!r} as {fmt}: {exc}") from exc
    return _from_records(raw)


def _from_llmdrift(raw: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("model", "id", "query", "answer") if c not in raw.columns]
    if missing:
        raise InvalidInputError(f"not an LLMDrift evaluation file: missing column(s) {', '.join(missing)}")
    out = pd.DataFrame(
        {
            "version": raw["model"].astype(str),
            "prompt_id": raw["id"].astype(str),
            "prompt": raw["query"].fillna("").astype(str),
            "response_text": raw["answer"].fillna("").astype(str),
            "tool_calls": "null",
            "tools": "null",
            "response_format": "null",
        }
    )
    # LLMDrift's own units: latency in seconds, cost in dollars, answer_token = completion tokens.
    if "ref_answer" in raw.columns:
        out["reference"] = raw["ref_answer"].fillna("").astype(str)
    if "latency" in raw.columns:
        out["latency_ms"] = pd.to_numeric(raw["latency"], errors="coerce") * 1000
    if "cost" in raw.columns:
        out["cost_usd"] = pd.to_numeric(raw["cost"], errors="coerce")
    if "answer_token" in raw.columns:
        out["completion_tokens"] = pd.to_numeric(raw["answer_token"], errors="coerce")
    return out


def _from_records(raw: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in VERSION_COLUMNS if c in raw.columns]
    if not columns:
        raise InvalidInputError(f"records name no version: need one of the columns {', '.join(VERSION_COLUMNS)}")
    version = pd.Series("", index=raw.index)
    for column in reversed(columns):  # the first column with a value wins
        values = raw[column].fillna("").astype(str)
        version = values.where(values != "", version)
    text_column = next((c for c in ("response_text", "answer", "response") if c in raw.columns), None)
    if text_column is None:
        raise InvalidInputError("records have no response_text (or answer/response) column")
    prompt = _prompts(raw)
    prompt_id = raw["prompt_id"].fillna("").astype(str) if "prompt_id" in raw.columns else pd.Series("", raw.index)
    # Records without a prompt id pair on the prompt text itself.
    fallback = prompt.map(lambda p: hashlib.sha256(p.encode("utf-8")).hexdigest()[:16])
    out = pd.DataFrame(
        {
            "version": version,
            "prompt_id": prompt_id.where(prompt_id != "", fallback),
            "prompt": prompt,
            "response_text": raw[text_column].fillna("").astype(str),
            "tool_calls": _json_column(raw, "tool_calls"),
            "tools": _json_column(raw, "tools"),
            "response_format": _json_column(raw, "response_format"),
        }
    )
    for column, sources in OPTIONAL_SOURCES.items():
        source = next((c for c in sources if c in raw.columns), None)
        if source is None:
            continue
        values = raw[source]
        # Malformed numbers become missing (the dimension then reports the pair not applicable).
        out[column] = values.fillna("").astype(str) if column == "reference" else pd.to_numeric(values, errors="coerce")
    return out


def _prompts(raw: pd.DataFrame) -> pd.Series:
    if "messages" in raw.columns:
        messages = raw["messages"].map(lambda m: m if isinstance(m, str) else json.dumps(m))
        return messages.map(last_user_message)
    for column in ("prompt", "query"):
        if column in raw.columns:
            return raw[column].fillna("").astype(str)
    raise InvalidInputError("records have no messages (or prompt/query) column")


def _json_column(raw: pd.DataFrame, column: str) -> pd.Series:
    if column not in raw.columns:
        return pd.Series("null", index=raw.index)
    return raw[column].map(_as_json)


def _as_json(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return "null"
    return value if isinstance(value, str) else json.dumps(value)


def resolve_version(records: pd.DataFrame, version: str) -> str:
    """The version name in the records: exact, or after a provider prefix ('openaichat/gpt-4-0314')."""
    names = sorted(records["version"].unique())
    if version in names:
        return version
    matches = [n for n in names if n.rsplit("/", 1)[-1] == version]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(names) or "none"
    if matches:
        raise InvalidInputError(f"version {version!r} is ambiguous: {', '.join(matches)}")
    raise NotFoundError(f"version {version!r} is not in the records (found: {known})")


def pair_versions(records: pd.DataFrame, baseline: str, candidate: str) -> tuple[pd.DataFrame, Pairing]:
    """A `score_pairs` table for the prompts both versions answered (first answer per prompt)."""
    base_name, cand_name = resolve_version(records, baseline), resolve_version(records, candidate)
    base = records[records["version"] == base_name]
    cand = records[records["version"] == cand_name]
    duplicates = int(base["prompt_id"].duplicated().sum() + cand["prompt_id"].duplicated().sum())
    base, cand = base.drop_duplicates("prompt_id"), cand.drop_duplicates("prompt_id")
    merged = base.merge(cand, on="prompt_id", suffixes=("_b", "_c"), how="inner")
    pairs = pd.DataFrame(
        {
            "pair_id": merged["prompt_id"],
            "prompt": merged["prompt_b"],
            "baseline_text": merged["response_text_b"],
            "candidate_text": merged["response_text_c"],
            "baseline_tool_calls": merged["tool_calls_b"],
            "candidate_tool_calls": merged["tool_calls_c"],
            "tools": merged["tools_b"],
            "response_format": merged["response_format_b"],
        }
    )
    if "reference_b" in merged.columns:
        pairs["reference"] = merged["reference_b"].where(merged["reference_b"] != "", merged["reference_c"]).values
    for column in OPTIONAL[1:]:
        if f"{column}_b" in merged.columns:
            pairs[f"baseline_{column}"] = merged[f"{column}_b"].values
            pairs[f"candidate_{column}"] = merged[f"{column}_c"].values
    pairing = Pairing(
        baseline_rows=len(base),
        candidate_rows=len(cand),
        paired=len(pairs),
        unpaired_baseline=len(base) - len(pairs),
        unpaired_candidate=len(cand) - len(pairs),
        duplicates=duplicates,
    )
    if pairs.empty:
        raise InvalidInputError(f"{base_name} and {cand_name} share no prompt id: nothing to compare")
    return pairs, pairing


def compare(
    path: str | Path,
    *,
    fmt: Format,
    baseline: str,
    candidate: str,
    threshold: float = 0.05,
    alpha: float = 0.01,
    embedding_cache: str | Path | None = None,
    dimensions: list[str] | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
) -> ScoreResult:
    """Pair two versions' recorded outputs and score them; the report carries a `pairing` section."""
    records = load_records(path, fmt)
    pairs, pairing = pair_versions(records, baseline, candidate)
    if embedder is None:
        embedder = embeddings.from_settings(cache_path=embedding_cache)  # backend and store from settings
    if not dimensions or "similarity" in dimensions:
        # The model loads and embeds while scoring's modules (statistics, the dimensions) import.
        left, right = pairs["baseline_text"].tolist(), pairs["candidate_text"].tolist()
        embedder.prefetch_pairs(left, right, progress=progress)
    try:
        from drift_pipeline.detection.scoring import score_pairs

        result = score_pairs(
            pairs,
            baseline=resolve_version(records, baseline),
            candidate=resolve_version(records, candidate),
            threshold=threshold,
            alpha=alpha,
            embedder=embedder,
            dimensions=dimensions,
            progress=progress,
        )
    finally:
        embedder.prefetch.cancel()  # a no-op unless scoring failed before it waited for the prefetch
    result.report["pairing"] = pairing.to_dict()
    result.report["source"] = {"path": str(path), "format": fmt}
    if embedding_cache:
        embedder.cache.save(embedding_cache)
    return result
