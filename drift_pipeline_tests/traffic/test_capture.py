"""Traffic capture through a real litellm call (mock_response), and a slow or dead sink."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

import litellm
import pytest

from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.traffic.capture import TrafficCapture, build_record
from drift_pipeline.traffic.records import TrafficRecord, is_silent_reroute, read_traffic

META = {"tenant_id": "acme", "agent_id": "support", "workflow_type": "refund", "agent_step": "draft"}


@pytest.fixture
def installed():
    saved = list(litellm.callbacks)
    yield lambda capture: setattr(litellm, "callbacks", [capture])
    litellm.callbacks = saved


def test_litellm_call_lands_in_the_store_with_its_resolved_version(s3_objects: ObjectStore, installed):
    capture = TrafficCapture(s3_objects, resolver=lambda t, a: "gpt-4o-2024-08-06", flush_interval=0.05)
    installed(capture)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "refund order 7?"}]
    litellm.completion(
        model="openai/gpt-4o-2024-08-06",
        messages=messages,
        mock_response="Refund issued.",
        metadata=META,
        tools=[{"type": "function", "function": {"name": "refund", "parameters": {"type": "object"}}}],
    )
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(
            model="openai/gpt-4o-2024-08-06",
            messages=messages,
            mock_response="litellm.RateLimitError",
            metadata=META | {"agent_step": "retry"},
        )
    deadline = time.monotonic() + 20
    while capture.stats()["captured"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # litellm runs sync callbacks on its own executor
    assert capture.close()
    stored = read_traffic(s3_objects, "acme").sort_values("agent_step")
    assert list(stored["agent_step"]) == ["draft", "retry"]
    ok, failed = stored.iloc[0], stored.iloc[1]
    assert ok["pinned_model_id"] == "gpt-4o-2024-08-06" and ok["served_model"] == "gpt-4o-2024-08-06"
    assert ok["requested_model"] == "openai/gpt-4o-2024-08-06" and not ok["silent_reroute"]
    assert ok["response_text"] == "Refund issued." and ok["finish_reason"] == "stop"
    assert (ok["prompt_tokens"], ok["completion_tokens"]) == (10, 20) and ok["latency_ms"] >= 0
    assert json.loads(ok["messages"]) == messages and json.loads(ok["tools"])[0]["function"]["name"] == "refund"
    assert (ok["workflow_type"], ok["source"]) == ("refund", "capture")
    assert "RateLimitError" in failed["error"] and failed["response_text"] == ""
    assert capture.stats()["written"] == 2 and capture.stats()["dropped"] == 0


class BlockingSink:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.release = seconds, threading.Event()
        self.records: list[TrafficRecord] = []

    def write(self, records: Sequence[TrafficRecord]) -> None:
        self.release.wait(self.seconds)
        self.records.extend(records)


def test_slow_sink_never_slows_the_call_and_overflow_is_counted(installed, caplog):
    sink = BlockingSink(5.0)
    capture = TrafficCapture(sink, max_queue=2, batch_size=1, flush_interval=0.01)
    installed(capture)
    started = time.monotonic()
    for i in range(6):
        litellm.completion(
            model="gpt-4o", messages=[{"role": "user", "content": f"q{i}"}], mock_response="a", metadata=META
        )
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 20
    while capture.stats()["captured"] < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert elapsed < 3.0  # six calls while the sink blocks for 5 s
    stats = capture.stats()
    assert stats["dropped_queue_full"] >= 1
    assert stats["captured"] == stats["written"] + stats["pending"] + stats["dropped"]
    assert "queue full" in caplog.text
    sink.release.set()
    assert capture.close(timeout=10)
    stats = capture.stats()
    assert stats["written"] + stats["dropped"] == 6 and len(sink.records) == stats["written"]


def test_dead_s3_sink_retries_then_counts_the_drop(s3_bucket: str, caplog):
    dead = ObjectStore(
        f"s3://{s3_bucket}/dead",
        {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}, "config_kwargs": {"retries": {"max_attempts": 1}}},
    )
    capture = TrafficCapture(dead, max_retries=2, backoff=0.01, flush_interval=0.01)
    started = time.monotonic()
    capture._capture({"messages": [], "litellm_params": {"metadata": META}}, None, None, None, None)
    assert time.monotonic() - started < 0.5
    assert capture.close(timeout=60)
    stats = capture.stats()
    assert (stats["dropped_sink_errors"], stats["written"], stats["write_failures"]) == (1, 0, 3)
    assert "dropped 1 records" in caplog.text


def test_silent_reroute_and_missing_tenant(local_objects: ObjectStore):
    class Resp:
        model = "openai/gpt-4o-2024-11-20"
        system_fingerprint = "fp_1"
        choices = ()
        usage = None

    kwargs = {
        "messages": [{"role": "user", "content": "hi"}],
        "litellm_params": {"metadata": META | {"pinned_model_id": "gpt-4o-2024-08-06"}},
    }
    record = build_record(kwargs, Resp(), None, None)
    assert record.silent_reroute and record.system_fingerprint == "fp_1"
    assert not is_silent_reroute("openai/gpt-4o-2024-08-06", "gpt-4o-2024-08-06")
    assert not is_silent_reroute("", "gpt-4o")

    capture = TrafficCapture(local_objects, flush_interval=0.01)
    capture._capture(kwargs, Resp(), None, None, None)
    capture._capture({"messages": [], "litellm_params": {"metadata": {}}}, None, None, None, "boom")
    assert capture.close()
    assert capture.stats()["silent_reroutes"] == 1
    assert read_traffic(local_objects, "acme")["silent_reroute"].tolist() == [True]
    quarantined = local_objects.read_batches("quarantine", "_unknown")
    assert quarantined["reason"].tolist() == ["missing_tenant"] and quarantined["error"].tolist() == ["boom"]


def test_shadow_replays_are_not_captured_as_traffic(local_objects: ObjectStore, installed):
    capture = TrafficCapture(local_objects, flush_interval=0.05)
    installed(capture)
    for flag in (True, False):
        litellm.completion(
            model="openai/gpt-4o-2024-08-06",
            messages=[{"role": "user", "content": f"replay={flag}"}],
            mock_response="ok",
            metadata=META | {"drift_pipeline_replay": flag},
        )
    deadline = time.monotonic() + 20
    while capture.stats()["captured"] + capture.stats()["skipped_replays"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert capture.close()
    stored = read_traffic(local_objects, "acme")
    assert [json.loads(m)[0]["content"] for m in stored["messages"]] == ["replay=False"]
    assert capture.stats()["skipped_replays"] == 1
