"""The search circuit breaker: opens after failures in a row, refuses fast, lets one trial through."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rag_streams.adapters.breaker import BreakerOpen, CircuitBreaker, State
from rag_streams.http.search import SearchRequest, search
from rag_streams.observability import metrics
from rag_streams.testing import HashingEmbedder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gauge(name: str) -> float:
    return metrics.circuit_breaker_state.labels(name)._value.get()


async def down() -> None:
    raise ConnectionError("qdrant is down")


async def up() -> str:
    return "hits"


async def test_opens_after_failures_in_a_row_and_refuses_without_calling() -> None:
    clock = Clock()
    breaker = CircuitBreaker("t-open", failures_to_open=3, reset_after_s=10, clock=clock)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call(down)
    assert breaker.state is State.CLOSED and gauge("t-open") == 0
    assert await breaker.call(up) == "hits"  # a success resets the count
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await breaker.call(down)
    assert breaker.state is State.OPEN and gauge("t-open") == 2
    calls = []

    async def counted() -> str:
        calls.append(1)
        return "hits"

    with pytest.raises(BreakerOpen):
        await breaker.call(counted)
    assert calls == []  # refused without touching the store


async def test_half_open_lets_one_trial_through_and_its_outcome_decides() -> None:
    clock = Clock()
    breaker = CircuitBreaker("t-half", failures_to_open=1, reset_after_s=10, clock=clock)
    with pytest.raises(ConnectionError):
        await breaker.call(down)
    clock.now += 9.9
    assert breaker.state is State.OPEN
    clock.now += 0.2
    assert breaker.state is State.HALF_OPEN and gauge("t-half") == 1
    with pytest.raises(ConnectionError):  # the trial fails: open again for another 10 s
        await breaker.call(down)
    assert breaker.state is State.OPEN
    clock.now += 10
    release = asyncio.Event()

    async def slow_trial() -> str:
        await release.wait()
        return "hits"

    trial = asyncio.create_task(breaker.call(slow_trial))
    await asyncio.sleep(0)
    with pytest.raises(BreakerOpen):  # only one trial at a time
        await breaker.call(up)
    release.set()
    assert await trial == "hits"
    assert breaker.state is State.CLOSED and gauge("t-half") == 0


async def test_errors_that_are_not_the_stores_fault_do_not_move_it() -> None:
    breaker = CircuitBreaker("t-perm", failures_to_open=1, reset_after_s=10, clock=Clock())

    async def bad_request() -> None:
        raise ValueError("a bug or a bad filter, not an outage")

    for _ in range(3):
        with pytest.raises(ValueError):
            await breaker.call(bad_request)
    assert breaker.state is State.CLOSED


class HangingStore:
    """A vector store that never answers (a Qdrant server stuck behind a dead connection)."""

    def __init__(self) -> None:
        self.calls = 0

    async def search(self, tenant: str, vector: Any, k: int, doc_ids: Any = None) -> list[Any]:
        self.calls += 1
        await asyncio.sleep(3600)
        return []


async def test_a_hanging_store_times_out_then_the_open_breaker_answers_fast() -> None:
    store, embedder = HangingStore(), HashingEmbedder()
    breaker = CircuitBreaker("t-hang", failures_to_open=2, reset_after_s=30)
    req = SearchRequest(query="what is kafka")

    async def one() -> Any:
        return await search(store, embedder, "acme", req, timeout_s=0.2)  # type: ignore[arg-type]

    for _ in range(2):
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await breaker.call(one)
        assert time.perf_counter() - started < 1.5
    started = time.perf_counter()
    with pytest.raises(BreakerOpen):
        await breaker.call(one)
    assert time.perf_counter() - started < 0.2 and store.calls == 2
