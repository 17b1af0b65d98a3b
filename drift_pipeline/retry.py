"""One retry mechanism for every outbound call: provider requests, alert deliveries, capture writes.

Built on tenacity: exponential back-off with full jitter, a server's Retry-After honoured when the error
carries one, a predicate for what is worth retrying, and an injectable sleep (tests; shutdown that must
not wait). Callers loop with ``for attempt in policy.retrying(...): with attempt: ...``.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import tenacity

Predicate = Callable[[BaseException], bool]


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; the wait before try n+1 is uniform in [0, min(max_delay_s, base * 2**(n-1))]."""

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    honour_retry_after: bool = True

    def delay(self, attempt: int, exc: BaseException | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed try `attempt` (counting from 1)."""
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        wait = (rng or random).uniform(0, cap)
        after = retry_after_s(exc) if self.honour_retry_after and exc is not None else None
        # A server that asks for more than the back-off gets it, within reason (4x the longest back-off).
        return max(wait, min(after, self.max_delay_s * 4)) if after is not None else wait

    def retrying(
        self,
        retry_if: Predicate = lambda exc: True,
        *,
        sleep: Callable[[float], Any] = time.sleep,
        rng: random.Random | None = None,
        before_sleep: Callable[[int, BaseException, float], None] | None = None,
    ) -> tenacity.Retrying:
        """A tenacity loop that re-raises the last error once `retry_if` says no or the attempts run out."""
        return tenacity.Retrying(sleep=sleep, **self._kwargs(retry_if, rng, before_sleep))

    def aretrying(
        self,
        retry_if: Predicate = lambda exc: True,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
        before_sleep: Callable[[int, BaseException, float], None] | None = None,
        start: int = 1,
    ) -> tenacity.AsyncRetrying:
        """The same loop for coroutines (`async for attempt in ...`). `start` > 1 continues a call whose
        first `start - 1` tries were made outside the loop: it makes the remaining tries, with their waits."""
        return tenacity.AsyncRetrying(sleep=sleep, **self._kwargs(retry_if, rng, before_sleep, start))

    def _kwargs(
        self,
        retry_if: Predicate,
        rng: random.Random | None,
        before_sleep: Callable[..., None] | None,
        start: int = 1,
    ) -> dict[str, Any]:
        def wait(state: tenacity.RetryCallState) -> float:
            return self.delay(state.attempt_number + start - 1, _error(state), rng)

        def hook(state: tenacity.RetryCallState) -> None:
            if before_sleep is not None and (exc := _error(state)) is not None:
                before_sleep(state.attempt_number + start - 1, exc, state.upcoming_sleep)

        return {
            "stop": tenacity.stop_after_attempt(max(1, self.attempts - start + 1)),
            "wait": wait,
            "retry": tenacity.retry_if_exception(retry_if),
            "before_sleep": hook,
            "reraise": True,
        }


def attempts_made(retrying: tenacity.BaseRetrying) -> int:
    """How many tries the last loop of `retrying` made (1 when the first succeeded)."""
    return int(retrying.statistics.get("attempt_number", 1))


def retry_after_s(exc: BaseException) -> float | None:
    """The server's Retry-After (seconds or HTTP date; or retry-after-ms), if the error carries one."""
    headers: Any = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) if response is not None else None
    if not headers:
        return None
    try:
        if headers.get("retry-after-ms") is not None:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, AttributeError):
        return None


def _error(state: tenacity.RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None and state.outcome.failed else None
