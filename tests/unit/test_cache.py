"""The answer cache: write generations make answers stale at once; a cache that fails is a miss."""

from __future__ import annotations

import socket
import time

from rag_streams.adapters.cache import RedisAnswerCache, answer_key
from rag_streams.observability import metrics
from rag_streams.testing import MemoryAnswerCache


def counts() -> tuple[float, float]:
    return metrics.cache_hits_total._value.get(), metrics.cache_misses_total._value.get()


def test_answer_key_tells_questions_k_and_filters_apart_but_not_filter_order() -> None:
    base = answer_key("what is kafka", 5, ["a", "b"])
    assert base == answer_key("what is kafka", 5, ["b", "a"])
    assert len({base, answer_key("what is kafka?", 5, ["a", "b"]), answer_key("what is kafka", 6, ["a", "b"])}) == 3
    assert base != answer_key("what is kafka", 5, ["a"])


async def test_a_write_makes_the_tenants_answers_stale_and_only_that_tenants() -> None:
    cache = MemoryAnswerCache(ttl_s=60)
    await cache.put("acme", "k", b"[1]")
    await cache.put("other", "k", b"[2]")
    hits, misses = counts()
    assert await cache.get("acme", "k") == b"[1]"
    await cache.written(["acme"])
    assert await cache.get("acme", "k") is None
    assert await cache.get("other", "k") == b"[2]"
    assert counts() == (hits + 2, misses + 1)
    await cache.put("acme", "k", b"[3]")  # answered again after the write
    assert await cache.get("acme", "k") == b"[3]"


async def test_answers_expire_after_the_ttl() -> None:
    now = [100.0]
    cache = MemoryAnswerCache(ttl_s=5, clock=lambda: now[0])
    await cache.put("acme", "k", b"[]")
    now[0] += 4.9
    assert await cache.get("acme", "k") == b"[]"
    now[0] += 0.2
    assert await cache.get("acme", "k") is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


async def test_redis_unreachable_is_a_fast_miss_and_never_an_error() -> None:
    cache = RedisAnswerCache(f"redis://127.0.0.1:{_closed_port()}/0", 60, timeout_s=0.2)
    hits, misses = counts()
    started = time.monotonic()
    await cache.put("acme", "k", b"[]")
    assert await cache.get("acme", "k") is None
    await cache.written(["acme"])
    assert time.monotonic() - started < 2
    assert counts() == (hits, misses + 1)
    assert cache._unbumped == {"acme"}  # owed: bumped before the next answer is read
    await cache.close()
