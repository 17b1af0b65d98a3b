"""Prefetch: work started in background threads that its owner's next step waits for.

The embedder starts its encoder on texts it will be asked for while the caller imports and scores the
dimensions that need no vectors; the encoder's inference releases the GIL, so the two overlap. The owner
`wait()`s before using the results (re-raising, once, an error of the work in its own thread), or
`cancel()`s work nobody will wait for; the work calls `check()` between steps to stop there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Cancelled(Exception):
    """Raised by `check()` in work whose owner cancelled it."""


class Prefetch:
    """Background threads of one owner: started, waited for, or cancelled between their steps."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None
        self._cancel = threading.Event()

    def start(self, work: Callable[[], object]) -> None:
        """Run `work` in a new thread, after the work started before it (one at a time, in order)."""
        thread = threading.Thread(target=self._run, args=(work, list(self._threads)), name=self.name)
        self._threads.append(thread)
        thread.start()

    def _run(self, work: Callable[[], object], before: list[threading.Thread]) -> None:
        for thread in before:
            thread.join()
        try:
            self.check()  # cancelled while it waited
            work()
        except Cancelled:
            pass
        except BaseException as exc:  # re-raised by the owner's wait(), in the owner's thread
            self._error = exc

    def check(self) -> None:
        """Called by the work between steps: stop here when the owner cancelled."""
        if self._cancel.is_set():
            raise Cancelled

    def wait(self) -> None:
        """Wait for all started work; re-raise the error of a failed one (once)."""
        self._join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def cancel(self) -> None:
        """Stop the work after its current step and wait for that; its error, if any, is dropped."""
        if not self._threads:
            return
        self._cancel.set()
        self._join()
        self._cancel.clear()
        self._error = None

    def _join(self) -> None:
        while True:
            try:  # pop, not a check then a pop: two threads may wait on one owner
                thread = self._threads.pop(0)
            except IndexError:
                return
            thread.join()
