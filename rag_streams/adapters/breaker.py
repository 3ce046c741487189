"""A circuit breaker: stop calling a dependency that keeps failing, try it again after a pause.

Closed: calls go through; ``failures_to_open`` transient failures in a row open it. Open: calls
are refused at once (the caller answers degraded, fast) until ``reset_after_s`` have passed.
Half-open: one trial call goes through; its success closes the breaker, its failure opens it
again for another ``reset_after_s``. The state is exported as ``rag_circuit_breaker_state``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import TypeVar

from rag_streams.errors import is_transient
from rag_streams.observability import metrics

__all__ = ["BreakerOpen", "CircuitBreaker", "State"]

T = TypeVar("T")


class State(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class BreakerOpen(Exception):
    """The breaker refused the call: the dependency failed recently."""


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failures_to_open: int = 5,
        reset_after_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failures_to_open = failures_to_open
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False
        self._set(State.CLOSED)

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.reset_after_s:
            self._set(State.HALF_OPEN)
        return self._state

    def _set(self, state: State) -> None:
        self._state = state
        metrics.circuit_breaker_state.labels(self.name).set(int(state))

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await ``fn()`` unless the breaker is open (then raise :class:`BreakerOpen`).

        Transient errors (timeouts, connection errors, 5xx: ``errors.is_transient``) count as
        failures and are re-raised; any other error is the caller's or a bug, and passes through
        without moving the breaker.
        """
        state = self.state
        if state is State.OPEN or (state is State.HALF_OPEN and self._trial_running):
            raise BreakerOpen(f"{self.name} circuit breaker is open")
        trial = state is State.HALF_OPEN
        self._trial_running = trial
        try:
            result = await fn()
        except Exception as exc:
            if is_transient(exc):
                self._failed(trial)
            raise
        finally:
            if trial:
                self._trial_running = False
        self._failures = 0
        if self._state is not State.CLOSED:
            self._set(State.CLOSED)
        return result

    def _failed(self, trial: bool) -> None:
        self._failures += 1
        if trial or self._failures >= self.failures_to_open:
            self._opened_at = self._clock()
            self._set(State.OPEN)
