"""Text generation with the offline model: chat prompts, batched greedy `generate()`, request coalescing.

Concurrent async requests are coalesced by `MicroBatcher` into batched `generate()` calls (left padding,
greedy), which give the same text as one-by-one calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from drift_pipeline.config import Settings
from drift_pipeline.detection.offline.model import load_base, load_quantized
from drift_pipeline.detection.offline.variants import ProviderVariant


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
    top_logprobs: int | None = None  # None: no logprobs; k >= 0: each token's logprob and the k most likely


@dataclass
class Generation:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[dict[str, Any]] | None = None  # OpenAI `choices[].logprobs.content` entries


_generate_lock = threading.Lock()  # one generate() at a time: torch already uses both cores


def render_prompt(messages: list[dict[str, Any]], variant: ProviderVariant, tools: Any = None) -> str:
    """Apply the chat template after the variant's prompt injection."""
    _, tokenizer = load_base()
    msgs = [{"role": str(m.get("role", "user")), "content": _text(m.get("content"))} for m in messages]
    if variant.safety_prompt:
        if msgs and msgs[0]["role"] == "system":
            msgs[0] = {"role": "system", "content": f"{variant.safety_prompt}\n\n{msgs[0]['content']}"}
        else:
            msgs.insert(0, {"role": "system", "content": variant.safety_prompt})
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
    model = load_quantized(key.quant_bits)
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
    scored = any(j.top_logprobs is not None for j in jobs)
    if scored:  # the scores after the logits processors: the distribution this provider decodes from
        gen_kwargs.update(output_scores=True, return_dict_in_generate=True)
    with _generate_lock, torch.inference_mode(), _torch_threads(generation_threads()):
        if key.sample and key.seed is not None:
            torch.manual_seed(key.seed)
        out = model.generate(**enc, **gen_kwargs)
    sequences = out.sequences if scored else out
    width = enc["input_ids"].shape[1]
    results = []
    for i, job in enumerate(jobs):
        gen = _finish(tokenizer, sequences[i, width:].tolist(), job, int(enc["attention_mask"][i].sum()), set(stop_ids))
        if job.top_logprobs is not None:
            gen.logprobs = token_logprobs(
                tokenizer, out.scores, i, sequences[i, width:].tolist(), gen, job.top_logprobs
            )
        results.append(gen)
    return results


def token_logprobs(
    tokenizer: Any, scores: tuple[Any, ...], row: int, new: list[int], gen: Generation, k: int
) -> list[dict[str, Any]]:
    """Per generated token (the stop token included): its log-probability and the k most likely tokens."""
    import torch

    entries = []
    for step, token_id in enumerate(new[: gen.completion_tokens]):
        logprobs = torch.log_softmax(scores[step][row].float(), dim=-1)
        top = torch.topk(logprobs, k) if k else None
        entries.append(
            {
                "token": tokenizer.decode([token_id]),
                "logprob": float(logprobs[token_id]),
                "bytes": None,
                "top_logprobs": []
                if top is None
                else [
                    {"token": tokenizer.decode([int(t)]), "logprob": float(v), "bytes": None}
                    for v, t in zip(top.values.tolist(), top.indices.tolist(), strict=True)
                ],
            }
        )
    return entries


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


_Pending = tuple[GenerationJob, asyncio.Future[Generation]]  # a queued job and the future awaiting it


class MicroBatcher:
    """Coalesce concurrent async requests into batched `generate()` calls.

    Requests arriving within `window_s` of each other (or while a batch is generating) are grouped by
    `GenerationKey` and run in batches of at most `max_batch`. Generation runs in a worker thread so the
    event loop keeps accepting requests meanwhile. Sampled requests run alone so a seed stays reproducible.
    """

    def __init__(self, max_batch: int = 16, window_s: float = 0.01) -> None:
        self.max_batch = max_batch
        self.window_s = window_s
        self._pending: list[_Pending] = []
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

    def _groups(self, items: list[_Pending]) -> list[list[_Pending]]:
        by_key: dict[GenerationKey, list[_Pending]] = {}
        groups = []
        for job, fut in items:
            if job.key.sample:
                groups.append([(job, fut)])
            else:
                by_key.setdefault(job.key, []).append((job, fut))
        for members in by_key.values():
            groups.extend(members[i : i + self.max_batch] for i in range(0, len(members), self.max_batch))
        return groups
