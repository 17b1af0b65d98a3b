"""Fixtures for the replay tests: the real offline model (loaded once per session) and a scripted provider."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

FAKE = "fake"


class ScriptedLLM:
    """A litellm CustomLLM whose behaviour the test scripts through the last user message.

    `rl:N` raises RateLimitError (Retry-After header) for the first N calls; `5xx:N` InternalServerError;
    `slow:N` sleeps N seconds on the first call only; `bad` raises BadRequestError; anything else answers
    `"<model>: <content>"` after `delay` seconds. Every call is counted per (model, content).
    """

    def __init__(self) -> None:
        from litellm import CustomLLM

        self._base = CustomLLM
        self.calls: Counter[tuple[str, str]] = Counter()
        self.completed: list[tuple[str, str]] = []
        self.delay = 0.0
        self.retry_after = "0"
        self.in_flight = 0
        self.max_in_flight = 0
        self.params: list[dict[str, Any]] = []

    def handler(self) -> Any:
        outer = self

        class Handler(self._base):  # type: ignore[name-defined]
            async def acompletion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
                return await outer.respond(model, messages, kwargs.get("optional_params") or {})

        return Handler()

    async def respond(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        import httpx
        import litellm

        content = messages[-1]["content"]
        self.calls[(model, content)] += 1
        n = self.calls[(model, content)]
        self.params.append(params)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            kind, _, arg = content.partition(":")
            if kind == "rl" and n <= int(arg):
                resp = httpx.Response(
                    429, headers={"retry-after": self.retry_after}, request=httpx.Request("POST", "http://fake")
                )
                raise litellm.RateLimitError("slow down", llm_provider=FAKE, model=model, response=resp)
            if kind == "5xx" and n <= int(arg):
                raise litellm.InternalServerError("upstream broke", llm_provider=FAKE, model=model)
            if kind == "bad":
                raise litellm.BadRequestError("malformed request", llm_provider=FAKE, model=model)
            if kind == "slow" and n == 1:
                await asyncio.sleep(float(arg))
            await asyncio.sleep(self.delay)
            self.completed.append((model, content))
            return litellm.ModelResponse(
                model=model,
                system_fingerprint="fp_fake",
                choices=[{"message": {"role": "assistant", "content": f"{model}: {content}"}, "finish_reason": "stop"}],
                usage=litellm.Usage(prompt_tokens=len(content), completion_tokens=3, total_tokens=len(content) + 3),
            )
        finally:
            self.in_flight -= 1


@pytest.fixture
def fake_llm() -> Iterator[ScriptedLLM]:
    """A fresh scripted provider registered as litellm provider `fake` (other providers kept)."""
    import litellm

    scripted = ScriptedLLM()
    before = list(litellm.custom_provider_map or [])
    litellm.custom_provider_map = [e for e in before if e.get("provider") != FAKE] + [
        {"provider": FAKE, "custom_handler": scripted.handler()}
    ]
    yield scripted
    litellm.custom_provider_map = [e for e in litellm.custom_provider_map if e.get("provider") != FAKE]


@pytest.fixture(scope="session")
def offline_model() -> Any:
    """The real SmolLM2 offline provider, loaded once per test session and registered with litellm."""
    from drift_pipeline.detection.offline.model import load_base
    from drift_pipeline.detection.offline.provider import register_offline_provider

    load_base()
    return register_offline_provider()


def make_sample(prompts: list[str], *, tenant: str = "acme") -> pd.DataFrame:
    """A sample in the traffic record schema with one user message per prompt."""
    from drift_pipeline.traffic.records import TrafficRecord

    rows = [
        TrafficRecord(
            tenant_id=tenant,
            agent_id="support",
            timestamp=f"2026-11-26T07:00:{i:02d}+00:00",
            messages=json.dumps([{"role": "user", "content": p}]),
        ).to_row()
        for i, p in enumerate(prompts)
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def sample_factory() -> Any:
    return make_sample
