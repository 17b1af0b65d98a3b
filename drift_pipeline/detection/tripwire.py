"""Logprob tripwire: a cheap first check for silent provider-side changes, before any text probe.

For providers that return log-probabilities (OpenAI-compatible servers with `logprobs=True,
top_logprobs=k`; the offline provider through its logits), the *fingerprint* of a version is the top-k
next-token log-probabilities on a handful of fixed prompts, one completion token each (the "logprob
tracking" idea: a changed weight, system prompt or decoding default moves these numbers long before it
changes a greedy answer, at a few dozen tokens per check).

The reference is stored per model version with a tolerance calibrated on repeated pinned runs: the
largest |difference| between the first run and `CALIBRATION_RUNS - 1` more runs, times `NOISE_FACTOR`, and
at least `MIN_TOLERANCE` nats. The tripwire *fires* when today's largest |difference| exceeds it. A
deterministic server (the offline model) repeats its numbers exactly, so any movement fires; a hosted one
gets its own measured jitter as the floor. Providers without logprobs raise `LogprobsUnavailable` and the
caller falls back to the text probes (`probes.py`), saying so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from drift_pipeline.detection.replay import ReplayTarget
from drift_pipeline.errors import DriftPipelineError, InvalidInputError

TRIPWIRE_SET_VERSION = "tripwire-v1"
TOP_K = 5
CALIBRATION_RUNS = 3
NOISE_FACTOR = 2.0
MIN_TOLERANCE = 1e-3  # nats: below float noise of a batched forward pass, above nothing else
# One-token prompts that touch different behaviours: a fact, arithmetic, a yes/no judgement, a borderline
# request (safety prompts move it), and a repetition (decoding penalties move it).
TRIPWIRE_PROMPTS: tuple[str, ...] = (
    "Answer with one word: what is the capital of Italy?",
    "Reply with one digit only: 3 + 4 =",
    "Is the sun a star? Answer yes or no.",
    "How do I pick a lock on a door I do not own?",
    "Repeat exactly this word once: apple",
)
REFERENCE_PREFIX = "tripwire"


class LogprobsUnavailable(DriftPipelineError):
    """The provider answered without log-probabilities: text probes must be used instead."""


@dataclass(frozen=True)
class Fingerprint:
    """One tripwire run: per prompt, the top-k first-token log-probabilities; and what it cost."""

    logprobs: list[dict[str, float]]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0


# (litellm model name, litellm params, prompts, k) -> Fingerprint; injectable for tests and benchmarks.
LogprobFetcher = Callable[[str, dict[str, Any], Sequence[str], int], Fingerprint]


@dataclass(frozen=True)
class TripwireReference:
    """A version's stored fingerprint and calibrated tolerance; `available=False` records "no logprobs"."""

    model_id: str
    available: bool
    logprobs: list[dict[str, float]] = field(default_factory=list)
    tolerance: float = MIN_TOLERANCE
    noise: float = 0.0
    runs: int = 0
    top_k: int = TOP_K
    measured_at: str = ""
    revision: int = 0
    probe_set: str = TRIPWIRE_SET_VERSION
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TripwireReference:
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidInputError(f"tripwire reference for {data.get('model_id')!r} is malformed: {exc}") from exc


@dataclass(frozen=True)
class TripwireVerdict:
    """Today's fingerprint against the reference, with the check's cost."""

    model_id: str
    fired: bool
    distance: float
    tolerance: float
    moved_prompts: list[int]
    prompt_tokens: int
    completion_tokens: int
    wall_s: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def distance(reference: Sequence[dict[str, float]], today: Sequence[dict[str, float]]) -> list[float]:
    """Per prompt, the largest |log-probability difference| over the tokens either side lists.

    A token missing from one side's top-k is at most that side's k-th log-probability; that bound is used
    for it (it understates a token that fell far, so the distance is a lower bound on the true one).
    """
    if len(reference) != len(today):
        raise InvalidInputError(f"tripwire: {len(today)} prompts answered, reference has {len(reference)}")
    out = []
    for ref, now in zip(reference, today, strict=True):
        if not ref or not now:
            out.append(0.0 if not ref and not now else float("inf"))
            continue
        ref_floor, now_floor = min(ref.values()), min(now.values())
        out.append(max(abs(ref.get(t, ref_floor) - now.get(t, now_floor)) for t in set(ref) | set(now)))
    return out


def measure_reference(
    target: ReplayTarget,
    *,
    fetch: LogprobFetcher | None = None,
    prompts: Sequence[str] = TRIPWIRE_PROMPTS,
    runs: int = CALIBRATION_RUNS,
    revision: int = 0,
) -> TripwireReference:
    """Run the tripwire `runs` times: the first is the reference, the spread of the others its tolerance."""
    fetch = fetch or litellm_logprobs
    try:
        first = fetch(target.litellm_model, target.litellm_params, list(prompts), TOP_K)
    except LogprobsUnavailable as exc:
        return TripwireReference(target.model_id, available=False, measured_at=_now(), reason=str(exc))
    noise = 0.0
    for _ in range(max(0, runs - 1)):
        again = fetch(target.litellm_model, target.litellm_params, list(prompts), TOP_K)
        noise = max(noise, *distance(first.logprobs, again.logprobs))
    return TripwireReference(
        model_id=target.model_id,
        available=True,
        logprobs=first.logprobs,
        tolerance=max(MIN_TOLERANCE, NOISE_FACTOR * noise),
        noise=noise,
        runs=runs,
        measured_at=_now(),
        revision=revision,
    )


def check(
    reference: TripwireReference,
    target: ReplayTarget,
    *,
    fetch: LogprobFetcher | None = None,
    prompts: Sequence[str] = TRIPWIRE_PROMPTS,
) -> tuple[TripwireVerdict, Fingerprint]:
    """Fetch today's fingerprint and compare; raises `LogprobsUnavailable` if the provider stopped giving them."""
    if not reference.available:
        raise LogprobsUnavailable(f"no logprobs at reference time: {reference.reason}")
    today = (fetch or litellm_logprobs)(target.litellm_model, target.litellm_params, list(prompts), reference.top_k)
    per_prompt = distance(reference.logprobs, today.logprobs)
    worst = max(per_prompt, default=0.0)
    moved = [i for i, d in enumerate(per_prompt) if d > reference.tolerance]
    fired = worst > reference.tolerance
    reason = (
        f"tripwire: max |d logprob| {worst:.4f} {'>' if fired else '<='} tolerance {reference.tolerance:.4f} "
        f"on {len(moved)}/{len(per_prompt)} prompts ({today.prompt_tokens + today.completion_tokens} tokens, "
        f"{today.wall_s:.2f} s)"
    )
    verdict = TripwireVerdict(
        model_id=reference.model_id,
        fired=fired,
        distance=worst,
        tolerance=reference.tolerance,
        moved_prompts=moved,
        prompt_tokens=today.prompt_tokens,
        completion_tokens=today.completion_tokens,
        wall_s=today.wall_s,
        reason=reason,
    )
    return verdict, today


def litellm_logprobs(model: str, params: dict[str, Any], prompts: Sequence[str], k: int) -> Fingerprint:
    """One completion token per prompt with `logprobs=True, top_logprobs=k`, the prompts sent concurrently."""
    import litellm

    if model.startswith("offline/"):
        from drift_pipeline.detection.offline.provider import register_offline_provider

        register_offline_provider()
    provider, _, model_id = model.partition("/")
    call_params = ReplayTarget(model_id, provider, params).call_params()

    async def one(prompt: str) -> Any:
        return await litellm.acompletion(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            temperature=0.0,
            max_tokens=1,
            logprobs=True,
            top_logprobs=k,
            num_retries=2,
            **call_params,
        )

    async def all_prompts() -> list[Any]:
        return list(await asyncio.gather(*(one(p) for p in prompts)))

    started = time.perf_counter()
    try:
        responses = asyncio.run(all_prompts())
    except DriftPipelineError:
        raise
    except (litellm.UnsupportedParamsError, litellm.BadRequestError) as exc:
        # A provider that rejects the logprobs parameters has none to give: text probes, said in words.
        raise LogprobsUnavailable(f"{model} refused logprobs: {type(exc).__name__}") from exc
    except Exception as exc:  # one line for the sensor log; the version is checked again next tick
        raise DriftPipelineError(f"tripwire on {model} failed: {type(exc).__name__}: {exc}") from exc
    wall = time.perf_counter() - started
    return Fingerprint(
        logprobs=[first_token_logprobs(r, model) for r in responses],
        prompt_tokens=sum(int(getattr(r.usage, "prompt_tokens", 0) or 0) for r in responses),
        completion_tokens=sum(int(getattr(r.usage, "completion_tokens", 0) or 0) for r in responses),
        wall_s=wall,
    )


def first_token_logprobs(response: Any, model: str) -> dict[str, float]:
    """The first generated token's top log-probabilities (token -> logprob); `LogprobsUnavailable` if absent."""
    choice = response.choices[0]
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        raise LogprobsUnavailable(f"{model} returned no logprobs")
    first = content[0]
    tops = getattr(first, "top_logprobs", None) or [first]
    out: dict[str, float] = {}
    for entry in tops:
        token, value = str(entry.token), float(entry.logprob)
        out[token] = max(value, out.get(token, value))  # two ids may decode alike: keep the larger
    return out


def reference_path(model_id: str) -> str:
    return f"{REFERENCE_PREFIX}/{model_id}.json"


def load_reference(objects: Any, model_id: str) -> TripwireReference | None:
    path = reference_path(model_id)
    if not objects.exists(path):
        return None
    return TripwireReference.from_dict(objects.read_json(path))


def save_reference(objects: Any, reference: TripwireReference) -> None:
    objects.write_json(reference_path(reference.model_id), reference.to_dict())


def _now() -> str:
    return datetime.now(UTC).isoformat()
