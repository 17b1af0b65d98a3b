"""Traffic capture: a litellm callback that records every call without ever slowing or failing it.

Install once per process::

    import litellm
    from drift_pipeline.traffic.capture import TrafficCapture

    capture = TrafficCapture("s3://bucket/drift", resolver=runtime_resolver)
    litellm.callbacks = [capture]
    litellm.completion(model=..., messages=..., metadata={"tenant_id": "acme", "agent_id": "support",
                       "workflow_type": "refund", "agent_step": "draft"})

The hooks only convert the call to a `TrafficRecord` and `put_nowait` it on a bounded queue; a
background thread writes batches through `persistence.objects.ObjectStore`, retried by `retry.RetryPolicy`.
When the queue is full or the retries are exhausted the records are counted in `stats()` and logged
(nothing is dropped silently). Records without a usable tenant are kept in the quarantine.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from litellm.integrations.custom_logger import CustomLogger  # capture runs in the request path: litellm is loaded

from drift_pipeline.persistence.objects import ObjectStore
from drift_pipeline.retry import RetryPolicy, attempts_made
from drift_pipeline.traffic.records import TrafficRecord, dumps, is_silent_reroute
from drift_pipeline.traffic.sinks import RecordSink, StorageSink

log = logging.getLogger(__name__)

Resolver = Callable[[str, str], "str | None"]  # (tenant_id, agent_id) -> pinned model id


class TrafficCapture(CustomLogger):
    """A litellm `CustomLogger` that captures every call to a sink, in the background.

    `sink` is a storage URL (local folder or ``s3://``), an `ObjectStore`, or any `RecordSink`.
    `resolver(tenant_id, agent_id)` returns the pinned model id when the call's metadata has none.
    """

    def __init__(
        self,
        sink: str | ObjectStore | RecordSink,
        *,
        fmt: str = "parquet",
        resolver: Resolver | None = None,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__()
        if isinstance(sink, str):
            sink = ObjectStore(sink)
        self.sink: RecordSink = StorageSink(sink, fmt) if isinstance(sink, ObjectStore) else sink
        self.resolver = resolver
        self.batch_size, self.flush_interval = batch_size, flush_interval
        # `max_retries` retries after the first try, backing off from `backoff` up to `max_backoff` seconds.
        self.retry = RetryPolicy(
            attempts=max_retries + 1, base_delay_s=backoff, max_delay_s=max_backoff, honour_retry_after=False
        )
        self._queue: queue.Queue[TrafficRecord] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0  # records accepted but not yet written or dropped
        self._seen: OrderedDict[str, None] = OrderedDict()  # litellm call ids: never record a call twice
        self._stop = threading.Event()
        self.captured = self.written = self.dropped_queue_full = self.dropped_sink_errors = 0
        self.silent_reroutes = self.capture_errors = self.write_failures = self.skipped_replays = 0
        self._thread = threading.Thread(target=self._run, name="drift-traffic-capture", daemon=True)
        self._thread.start()

    # -- litellm hooks (names and parameters must match CustomLogger's: litellm passes them by keyword) --

    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._capture(kwargs, response_obj, start_time, end_time, None)

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._capture(kwargs, response_obj, start_time, end_time, kwargs.get("exception") or "unknown error")

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._capture(kwargs, response_obj, start_time, end_time, None)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._capture(kwargs, response_obj, start_time, end_time, kwargs.get("exception") or "unknown error")

    # -- public --------------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters: captured, written, dropped (by cause), pending, silent re-routes, errors."""
        with self._lock:
            return {
                "captured": self.captured,
                "written": self.written,
                "pending": self._pending,
                "dropped_queue_full": self.dropped_queue_full,
                "dropped_sink_errors": self.dropped_sink_errors,
                "dropped": self.dropped_queue_full + self.dropped_sink_errors,
                "write_failures": self.write_failures,
                "silent_reroutes": self.silent_reroutes,
                "capture_errors": self.capture_errors,
                "skipped_replays": self.skipped_replays,
            }

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued record is written or dropped; False when `timeout` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, then stop the background thread. Safe to call twice."""
        done = self.flush(timeout)
        self._stop.set()
        self._thread.join(timeout=5)
        return done

    # -- internals -----------------------------------------------------------------------------------

    def _capture(self, kwargs: dict[str, Any], response: Any, start: Any, end: Any, error: Any) -> None:
        # Never raise into litellm (it would log noise) and never block the caller.
        try:
            if is_replay(kwargs):  # shadow replays are ours, not the platform's traffic
                with self._lock:
                    self.skipped_replays += 1
                return
            call_id = str(kwargs.get("litellm_call_id") or "")
            with self._lock:
                if call_id and call_id in self._seen:
                    return
                if call_id:
                    self._seen[call_id] = None
                    if len(self._seen) > 10_000:
                        self._seen.popitem(last=False)
            record = build_record(kwargs, response, start, end, error, self.resolver)
        except Exception:
            with self._lock:
                self.capture_errors += 1
            log.exception("drift capture: could not build a traffic record (call not captured)")
            return
        with self._lock:
            self.captured += 1
            self.silent_reroutes += int(record.silent_reroute)
            self._pending += 1
        if record.silent_reroute:
            log.warning(
                "drift capture: silent re-route for %s/%s: pinned %s, served %s",
                record.tenant_id,
                record.agent_id,
                record.pinned_model_id,
                record.served_model,
            )
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._settle(dropped_full=1)
            log.error("drift capture: queue full, dropped 1 record (%d dropped so far)", self.dropped_queue_full)

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._take_batch()
            if batch:
                self._write_with_retries(batch)

    def _take_batch(self) -> list[TrafficRecord]:
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.flush_interval
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _write_with_retries(self, batch: list[TrafficRecord]) -> None:
        def warn(attempt: int, exc: BaseException, delay: float) -> None:
            log.warning("drift capture: sink write failed (attempt %d), retrying in %.1fs: %s", attempt, delay, exc)

        # The stop event is the sleep: it returns at once on close(), and the remaining retries run back to back.
        retrying = self.retry.retrying(sleep=self._stop.wait, before_sleep=warn)
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        self.sink.write(batch)
                    except Exception:
                        with self._lock:
                            self.write_failures += 1
                        raise
        except Exception as exc:
            self._settle(dropped_sink=len(batch))
            log.error(
                "drift capture: sink failed %d times, dropped %d records (%d dropped so far): %s",
                attempts_made(retrying),
                len(batch),
                self.dropped_sink_errors,
                exc,
            )
            return
        self._settle(written=len(batch))

    def _settle(self, written: int = 0, dropped_full: int = 0, dropped_sink: int = 0) -> None:
        with self._idle:
            self.written += written
            self.dropped_queue_full += dropped_full
            self.dropped_sink_errors += dropped_sink
            self._pending -= written + dropped_full + dropped_sink
            if not self._pending:
                self._idle.notify_all()


# -- record building (pure) ---------------------------------------------------------------------------


def is_replay(kwargs: Mapping[str, Any]) -> bool:
    """True for calls made by the replay engine (tagged `metadata={"drift_pipeline_replay": True}`)."""
    params = kwargs.get("litellm_params") or {}
    metadata = params.get("metadata") or kwargs.get("metadata") or {}
    return bool(metadata.get("drift_pipeline_replay"))


def build_record(
    kwargs: Mapping[str, Any],
    response: Any,
    start: Any,
    end: Any,
    error: Any = None,
    resolver: Resolver | None = None,
) -> TrafficRecord:
    """A `TrafficRecord` from litellm's callback arguments."""
    params = kwargs.get("litellm_params") or {}
    metadata = dict(params.get("metadata") or kwargs.get("metadata") or {})
    hidden = metadata.get("hidden_params") or {}
    tenant_id, agent_id = str(metadata.get("tenant_id") or ""), str(metadata.get("agent_id") or "")
    pinned = str(metadata.get("pinned_model_id") or "")
    if not pinned and resolver and tenant_id and agent_id:
        try:
            pinned = str(resolver(tenant_id, agent_id) or "")
        except Exception as exc:  # an unknown agent must not lose the record
            log.warning("drift capture: resolver failed for %s/%s: %s", tenant_id, agent_id, exc)
    optional = kwargs.get("optional_params") or {}
    served, fingerprint, text, tool_calls, finish, usage = _response_fields(response)
    return TrafficRecord(
        tenant_id=tenant_id,
        agent_id=agent_id,
        workflow_type=str(metadata.get("workflow_type") or "default"),
        agent_step=str(metadata.get("agent_step") or "default"),
        prompt_id=str(metadata.get("prompt_id") or ""),
        timestamp=_utc_iso(start),
        messages=dumps(_plain(kwargs.get("messages") or [])),
        requested_model=str(
            metadata.get("requested_model") or hidden.get("litellm_model_name") or kwargs.get("model") or ""
        ),
        pinned_model_id=pinned,
        served_model=served,
        system_fingerprint=fingerprint,
        tools=dumps(_plain(optional.get("tools", kwargs.get("tools")))),
        response_format=dumps(_plain(optional.get("response_format", kwargs.get("response_format")))),
        response_text=text,
        tool_calls=dumps(tool_calls),
        finish_reason=finish,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_ms=_latency_ms(start, end),
        error=_error_text(error),
        silent_reroute=is_silent_reroute(pinned, served),
        source="capture",
    )


def _error_text(error: Any) -> str:
    if error is None:
        return ""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return text[:2000]


def _response_fields(response: Any) -> tuple[str, str, str, Any, str, dict[str, Any]]:
    if response is None or not hasattr(response, "choices"):
        return "", "", "", None, "", {}
    choice = response.choices[0] if response.choices else None
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None) or ""
    calls = getattr(message, "tool_calls", None)
    usage = getattr(response, "usage", None)
    return (
        str(getattr(response, "model", "") or ""),
        str(getattr(response, "system_fingerprint", "") or ""),
        text if isinstance(text, str) else dumps(_plain(text)),
        _plain(calls) if calls else None,
        str(getattr(choice, "finish_reason", "") or ""),
        {
            "prompt_tokens": getattr(usage, "prompt_tokens", None),
            "completion_tokens": getattr(usage, "completion_tokens", None),
        },
    )


def _plain(value: Any) -> Any:
    """Pydantic objects (litellm Message, ToolCall) to plain JSON values."""
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump(exclude_none=True))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _utc_iso(value: Any) -> str:
    if isinstance(value, datetime):
        # litellm passes naive local times (datetime.now()): interpret them as local time.
        return value.astimezone(UTC).isoformat()
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).isoformat()
    return datetime.now(UTC).isoformat()


def _latency_ms(start: Any, end: Any) -> float | None:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return round((end - start).total_seconds() * 1000, 3)
    if isinstance(start, int | float) and isinstance(end, int | float):
        return round((end - start) * 1000, 3)
    return None
