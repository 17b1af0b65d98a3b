"""Provider-side variants of the offline model, and which one is served right now (in every process).

A hosted provider can change behaviour under the same model id (a re-quantization, a new decoding
default, an injected safety prompt), announcing it through `system_fingerprint` or not at all. The
offline provider imitates that with a `ProviderVariant`. The active variant lives in a small JSON file
under DRIFT_PIPELINE_HOME so that every process (Dagster runs steps in subprocesses) sees it; see
`set_variant` and `VARIANTS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drift_pipeline import files
from drift_pipeline.config import Settings
from drift_pipeline.errors import InvalidInputError, NotFoundError

MODEL_ID = "smollm2-135m-instruct"
STATE_FILE = "offline_provider.json"
DEFAULT_VARIANT = "base"
# The state file's key for the active variant predates the name "variant": kept so existing files stay valid.
_STATE_KEY = "revision"


@dataclass(frozen=True)
class ProviderVariant:
    """A provider-side change to how the same model id is served.

    `announced` variants change the response's `system_fingerprint` (as a provider that documents the
    change would); silent ones keep the base fingerprint, so only behaviour can reveal them.
    """

    name: str
    description: str
    announced: bool
    quant_bits: int | None = None  # round every linear layer's weights to this many bits per row
    repetition_penalty: float = 1.0  # a decoding default the client cannot override (not an OpenAI param)
    default_max_tokens: int = 512  # used when the request does not say max_tokens
    safety_prompt: str | None = None  # prepended to the system message

    @property
    def fingerprint(self) -> str:
        return f"fp_{MODEL_ID}_{self.name if self.announced else DEFAULT_VARIANT}"


SAFETY_PROMPT = (
    "You are a cautious assistant. If a request could be harmful, unethical, dangerous or private, "
    "refuse politely and briefly, starting with 'I'm sorry, but I can't help with that.'"
)

VARIANTS: dict[str, ProviderVariant] = {
    v.name: v
    for v in (
        ProviderVariant("base", "the model as shipped (Q4_1 GGUF, dequantized to fp32)", announced=True),
        ProviderVariant(
            "int4", "announced re-quantization: linear weights rounded to 4 bits per row", True, quant_bits=4
        ),
        ProviderVariant(
            "decoding-v2",
            "announced decoding defaults: repetition penalty 1.3, default max_tokens 64",
            True,
            repetition_penalty=1.3,
            default_max_tokens=64,
        ),
        ProviderVariant("safety-v1", "announced injected safety system prompt", True, safety_prompt=SAFETY_PROMPT),
        ProviderVariant(
            "int5-silent", "SILENT re-quantization to 5 bits per row (fingerprint unchanged)", False, quant_bits=5
        ),
        ProviderVariant(
            "safety-silent",
            "SILENT injected safety system prompt (fingerprint unchanged)",
            False,
            safety_prompt=SAFETY_PROMPT,
        ),
        ProviderVariant(
            "decoding-silent",
            "SILENT decoding defaults: repetition penalty 1.3 (fingerprint unchanged)",
            False,
            repetition_penalty=1.3,
        ),
    )
}


def state_path() -> Path:
    """The JSON file holding each offline model's active variant."""
    return Settings.from_env().home / STATE_FILE


_state_cache: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def _read_state(path: Path) -> dict[str, Any]:
    """Read the state file, re-parsing only when its stat changes (it is read on every call)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    key = (st.st_mtime_ns, st.st_ino, st.st_size)
    cached = _state_cache.get(path)
    if cached and cached[0] == key:
        return cached[1]
    try:
        data = json.loads(path.read_text("utf-8"))
    except ValueError as exc:
        raise InvalidInputError(f"offline provider state {path} is not valid JSON: {exc}") from exc
    _state_cache[path] = (key, data)
    return data


def active_variant(model_id: str = MODEL_ID) -> ProviderVariant:
    """The variant the offline provider serves `model_id` with right now (any process's last `set_variant`)."""
    entry = _read_state(state_path()).get("models", {}).get(model_id, {})
    return get_variant(entry.get(_STATE_KEY, DEFAULT_VARIANT))


def get_variant(name: str) -> ProviderVariant:
    """The variant called `name`; NotFoundError naming the known ones otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise NotFoundError(f"unknown offline provider variant {name!r} (known: {', '.join(VARIANTS)})") from None


def set_variant(model_id: str, variant: str, *, note: str = "") -> ProviderVariant:
    """Make the offline provider serve `model_id` with `variant` from now on, in every process."""
    if model_id != MODEL_ID:
        raise NotFoundError(f"the offline provider serves only {MODEL_ID!r}, not {model_id!r}")
    chosen = get_variant(variant)
    path = state_path()
    state = dict(_read_state(path))
    models = dict(state.get("models", {}))
    history = list(models.get(model_id, {}).get("history", []))
    now = datetime.now(UTC).isoformat()
    history.append({_STATE_KEY: chosen.name, "at": now, "note": note})
    models[model_id] = {_STATE_KEY: chosen.name, "since": now, "history": history[-50:]}
    state["models"] = models
    # atomic (temp name + rename: a reader sees the old or the new file, never half of one) and owner-only
    files.write_private(path, json.dumps(state, indent=2, sort_keys=True).encode("utf-8"))
    return chosen


def show_state() -> dict[str, Any]:
    """Active variant (and its history) of the offline model, for the CLI."""
    entry = _read_state(state_path()).get("models", {}).get(MODEL_ID, {})
    active = get_variant(entry.get(_STATE_KEY, DEFAULT_VARIANT))
    history = [
        {"variant": h.get(_STATE_KEY), "at": h.get("at"), "note": h.get("note", "")} for h in entry.get("history", [])
    ]
    return {
        "model": MODEL_ID,
        "variant": active.name,
        "announced": active.announced,
        "system_fingerprint": active.fingerprint,
        "description": active.description,
        "since": entry.get("since"),
        "history": history,
        "state_file": str(state_path()),
    }
