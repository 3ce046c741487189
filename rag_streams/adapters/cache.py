"""The search answer cache: Redis in a deployment, a dict in tests (both behind ``AnswerCache``).

A cached answer's key holds the tenant's *write generation*, a counter the index stage bumps
after every batch of writes to the tenant is acknowledged by the vector store. Answers cached
before a write are then never read again (they expire by ``RAG_CACHE_TTL``): no stale read once
a write is indexed. A cache that fails (Redis down, slow) is a miss, never a failed search.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from typing import Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from rag_streams.observability import metrics

__all__ = ["AnswerCache", "RedisAnswerCache", "answer_key"]
log = logging.getLogger(__name__)


def answer_key(query: str, k: int, doc_ids: Iterable[str]) -> str:
    """What identifies an answer within a tenant and write generation: the question, k and the
    filter. (A reindex bumps the generation when it flips the tenant's alias to a new model.)"""
    spec = orjson.dumps([query, k, sorted(doc_ids)])
    return hashlib.sha256(spec).hexdigest()[:32]


class AnswerCache(Protocol):
    async def get(self, tenant: str, key: str) -> bytes | None: ...

    async def put(self, tenant: str, key: str, answer: bytes) -> None: ...

    async def written(self, tenants: Iterable[str]) -> None:
        """Writes to these tenants were indexed: their cached answers are stale from now on."""
        ...

    async def close(self) -> None: ...


class RedisAnswerCache:
    """Keys: ``{ns}:gen:{tenant}`` (the write generation) and ``{ns}:answer:{tenant}:{gen}:{key}``.

    A generation bump that fails (Redis unreachable) is retried before the next cache call, and
    until it succeeds that tenant's answers are misses here, so no stale answer is served from
    this process."""

    def __init__(self, url: str, ttl_s: int, *, namespace: str = "rag", timeout_s: float = 0.25) -> None:
        self.ttl_s, self.ns = ttl_s, namespace
        self._redis = aioredis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._unbumped: set[str] = set()
        self._warned_at = -1e9

    def _failed(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 60:  # Redis down: once a minute, not once a search
            self._warned_at = now
            log.warning("answer cache unavailable (%s: %s); searching without it", what, exc)

    async def _answer_key(self, tenant: str, key: str) -> str:
        generation = await self._redis.get(f"{self.ns}:gen:{tenant}")
        return f"{self.ns}:answer:{tenant}:{int(generation or 0)}:{key}"

    async def get(self, tenant: str, key: str) -> bytes | None:
        answer: bytes | None = None
        try:
            if await self._bump_pending() and tenant not in self._unbumped:
                value = await self._redis.get(await self._answer_key(tenant, key))
                answer = value if isinstance(value, bytes) else None  # the client does not decode
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
        (metrics.cache_misses_total if answer is None else metrics.cache_hits_total).inc()
        return answer

    async def put(self, tenant: str, key: str, answer: bytes) -> None:
        try:
            await self._redis.set(await self._answer_key(tenant, key), answer, ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            self._failed("put", exc)

    async def written(self, tenants: Iterable[str]) -> None:
        self._unbumped.update(tenants)
        await self._bump_pending()

    async def _bump_pending(self) -> bool:
        """Bump the generations still owed; False if Redis refused."""
        names = sorted(self._unbumped)
        if not names:
            return True
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for tenant in names:
                    pipe.incr(f"{self.ns}:gen:{tenant}")
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("write generation", exc)
            return False
        self._unbumped.difference_update(names)
        return True

    async def close(self) -> None:
        await self._redis.aclose()
