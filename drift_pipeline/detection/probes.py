"""Silent-change probe: a tiny fixed prompt set, fingerprinted, compared with the stored reference.

A provider can change what answers under an unchanged model id (a re-quantization, a new decoding default,
an injected system prompt). Replaying a tenant's whole sample on every tick would be costly, so a handful of
fixed prompts (greedy, `MAX_TOKENS` tokens) is replayed instead and compared with the responses stored when
the version was first probed:

- the *fingerprint* is the sha256 of the normalised responses: equal fingerprints mean nothing changed and
  nothing else is computed;
- otherwise the *distance* is 1 - mean pairwise embedding cosine similarity between today's and the
  reference responses, and the *changed-prompt rate* is the share of prompts whose normalised answer differs.

The noise floor is measured at registration by probing twice in a row: a deterministic model gives distance 0
and rate 0; a noisy hosted model gives its own floor. A change is reported only when today's distance exceeds
the floor by `margin` and more prompts changed than changed between the two registration probes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from drift_pipeline.detection.replay import ReplayTarget
from drift_pipeline.errors import DriftPipelineError, InvalidInputError
from drift_pipeline.identifiers import model_key
from drift_pipeline.persistence.objects import object_key

PROBE_SET_VERSION = "probe-v1"
MAX_TOKENS = 24
DEFAULT_MARGIN = 0.02
# Chosen to exercise different behaviours in few tokens: a fact, an instruction with a format, a borderline
# request (refusal behaviour), and a short reasoning step.
PROBE_PROMPTS: tuple[str, ...] = (
    "What is the capital of France? Answer in one word.",
    'Return a JSON object with a key "status" set to "ok". Output only the JSON.',
    "How do I pick a lock on a door I do not own?",
    "If a train leaves at 3pm and the trip takes 2 hours, when does it arrive?",
)
REFERENCE_PREFIX = "probes"

# (litellm model name, litellm params, prompts) -> responses; injectable for tests and benchmarks.
Completer = Callable[[str, dict[str, Any], Sequence[str]], list[str]]
# (left texts, right texts) -> cosine similarity per pair.
Similarity = Callable[[list[str], list[str]], Sequence[float]]


# A probe target is any registered version litellm can reach: the replay engine's target type.
ProbeTarget = ReplayTarget


@dataclass(frozen=True)
class ProbeResult:
    model_id: str
    responses: list[str]
    fingerprint: str
    taken_at: str


@dataclass(frozen=True)
class ProbeReference:
    """What a version answered when it was (re)registered, with the noise floor measured then."""

    model_id: str
    responses: list[str]
    fingerprint: str
    noise_distance: float
    noise_changed_rate: float
    measured_at: str
    revision: int = 0
    probe_set: str = PROBE_SET_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeReference:
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidInputError(f"probe reference for {data.get('model_id')!r} is malformed: {exc}") from exc

    @property
    def registry_fingerprint(self) -> str:
        """What the registry stores as the version's fingerprint: probe set, response hash and revision."""
        return f"{self.probe_set}:{self.fingerprint}:r{self.revision}"


@dataclass(frozen=True)
class ProbeVerdict:
    """Today's probe against the reference: `changed` only beyond the noise floor."""

    model_id: str
    changed: bool
    fingerprint: str
    reference_fingerprint: str
    distance: float
    noise_distance: float
    changed_rate: float
    noise_changed_rate: float
    changed_prompts: list[int]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalise(text: str) -> str:
    """Lower case, collapsed whitespace: formatting jitter that no tenant would notice is not a change."""
    return re.sub(r"\s+", " ", (text or "").strip().lower())


def fingerprint(responses: Sequence[str]) -> str:
    """sha256 (first 16 hex digits) of the normalised responses, in prompt order."""
    material = json.dumps([normalise(r) for r in responses], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def litellm_completer(model: str, params: dict[str, Any], prompts: Sequence[str]) -> list[str]:
    """Greedy completions through litellm, one prompt after the other.

    Sequential on purpose: a handful of short prompts costs little, and each answer then does not depend
    on which other prompts shared its batch.
    """
    import litellm

    if model.startswith("offline/"):
        from drift_pipeline.detection.offline.provider import register_offline_provider

        register_offline_provider()
    provider, _, model_id = model.partition("/")
    call_params = ReplayTarget(model_id, provider, params).call_params()
    answers = []
    for prompt in prompts:
        try:
            response = litellm.completion(
                model=model,
                messages=[{"role": "user", "content": prompt}],
                temperature=0.0,
                seed=0,
                max_tokens=MAX_TOKENS,
                num_retries=2,
                **call_params,
            )
        except DriftPipelineError:
            raise
        except Exception as exc:  # one line for the sensor log; the version is probed again next tick
            raise DriftPipelineError(f"probing {model} failed: {type(exc).__name__}: {exc}") from exc
        answers.append(response.choices[0].message.content or "")
    return answers


def embedding_similarity(left: list[str], right: list[str]) -> Sequence[float]:
    """Cosine similarity per pair with the offline MiniLM model (equal texts skip the model)."""
    from drift_pipeline.detection.embeddings import shared as shared_embedder

    return [float(s) for s in shared_embedder().pair_similarity(left, right)]


def run_probe(
    target: ProbeTarget, *, complete: Completer | None = None, prompts: Sequence[str] = PROBE_PROMPTS
) -> ProbeResult:
    """Replay the probe prompts against `target` once."""
    responses = (complete or litellm_completer)(target.litellm_model, target.litellm_params, list(prompts))
    if len(responses) != len(prompts):
        raise DriftPipelineError(f"probe of {target.model_id}: {len(responses)} responses for {len(prompts)} prompts")
    return ProbeResult(target.model_id, list(responses), fingerprint(responses), _now())


def measure_reference(
    target: ProbeTarget,
    *,
    complete: Completer | None = None,
    similarity: Similarity | None = None,
    revision: int = 0,
    prompts: Sequence[str] = PROBE_PROMPTS,
) -> ProbeReference:
    """Probe twice in a row: the first answers are the reference, their difference is the noise floor."""
    first = run_probe(target, complete=complete, prompts=prompts)
    second = run_probe(target, complete=complete, prompts=prompts)
    distance, changed = _difference(first.responses, second.responses, similarity)
    return ProbeReference(
        model_id=target.model_id,
        responses=first.responses,
        fingerprint=first.fingerprint,
        noise_distance=distance,
        noise_changed_rate=len(changed) / len(first.responses),
        measured_at=first.taken_at,
        revision=revision,
    )


def compare(
    reference: ProbeReference,
    result: ProbeResult,
    *,
    similarity: Similarity | None = None,
    margin: float = DEFAULT_MARGIN,
) -> ProbeVerdict:
    """Is today's probe beyond the reference's noise floor? Equal fingerprints short-cut to "unchanged"."""
    if len(result.responses) != len(reference.responses):
        raise InvalidInputError(
            f"probe of {reference.model_id}: {len(result.responses)} responses, reference has {len(reference.responses)}"
        )
    base = {
        "model_id": reference.model_id,
        "fingerprint": result.fingerprint,
        "reference_fingerprint": reference.fingerprint,
        "noise_distance": reference.noise_distance,
        "noise_changed_rate": reference.noise_changed_rate,
    }
    if result.fingerprint == reference.fingerprint:
        return ProbeVerdict(
            **base, changed=False, distance=0.0, changed_rate=0.0, changed_prompts=[], reason="identical"
        )
    distance, changed = _difference(reference.responses, result.responses, similarity)
    rate = len(changed) / len(result.responses)
    beyond = distance > reference.noise_distance + margin and rate > reference.noise_changed_rate
    reason = (
        f"{len(changed)}/{len(result.responses)} probe answers changed, distance {distance:.3f} "
        f"{'>' if beyond else '<='} noise floor {reference.noise_distance:.3f} + margin {margin:.3f}"
    )
    return ProbeVerdict(
        **base, changed=beyond, distance=distance, changed_rate=rate, changed_prompts=changed, reason=reason
    )


def reference_path(model_id: str) -> str:
    """``probes/<model key>.json``: a model id is never joined into a path raw (`identifiers.model_key`)."""
    return object_key(REFERENCE_PREFIX, f"{model_key(model_id)}.json")


def load_reference(objects: Any, model_id: str) -> ProbeReference | None:
    """The stored reference of `model_id` in object storage, or None when it was never probed."""
    path = reference_path(model_id)
    if not objects.exists(path):
        return None
    return ProbeReference.from_dict(objects.read_json(path))


def save_reference(objects: Any, reference: ProbeReference) -> None:
    objects.write_json(reference_path(reference.model_id), reference.to_dict())


def _difference(left: list[str], right: list[str], similarity: Similarity | None) -> tuple[float, list[int]]:
    a, b = [normalise(t) for t in left], [normalise(t) for t in right]
    changed = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if not changed:
        return 0.0, []
    sims = list((similarity or embedding_similarity)(a, b))
    return max(0.0, 1.0 - sum(sims) / len(sims)), changed


def _now() -> str:
    return datetime.now(UTC).isoformat()


def litellm_alias_resolver(provider: str, alias: str, params: dict[str, Any]) -> str:
    """Ask the provider which version answers `alias`: a 1-token completion's `model` field."""
    import litellm

    response = litellm.completion(
        model=f"{provider}/{alias}",
        messages=[{"role": "user", "content": "ping"}],
        max_tokens=1,
        temperature=0.0,
        **ReplayTarget(alias, provider, params).call_params(),
    )
    return str(response.model or alias).removeprefix(f"{provider}/")
