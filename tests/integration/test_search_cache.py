"""The search answer cache on a real Redis (SPEC §7): a repeated question is answered from the
cache; a write, once indexed, makes the tenant's cached answers stale at once; Redis down costs
the cache, never the answer."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from rag_streams.adapters.redis_local import RedisServer

pytestmark = pytest.mark.integration
TENANT = "cachetest"
QUESTION = {"query": "which harbour do the lighthouse keepers guard", "k": 3}


async def ask(pipeline: Any) -> dict[str, Any]:
    status, body = await pipeline.api("POST", f"/v1/tenants/{TENANT}/search", QUESTION)
    assert status == 200, body
    return dict(body)


def versions(body: dict[str, Any]) -> set[tuple[str, int]]:
    return {(r["doc_id"], r["version"]) for r in body["results"]}


async def test_repeated_question_is_cached_until_a_write_to_the_tenant_is_indexed(
    pipeline: Any, redis_server: RedisServer
) -> None:
    async with pipeline.producer() as p:
        await p.upsert(TENANT, "harbour", "The lighthouse keepers guard the northern harbour at night.", version=1)
        await p.upsert(TENANT, "bakery", "The bakery opens at six and sells rye bread.", version=1)
    await pipeline.wait_for(
        lambda: pipeline.holds_exactly(TENANT, {("harbour", 1), ("bakery", 1)}), timeout=120, what="indexing"
    )
    hits = await pipeline.metric("rag_cache_hits_total")

    first, second = await ask(pipeline), await ask(pipeline)
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["results"] == first["results"] and ("harbour", 1) in versions(first)
    assert await pipeline.metric("rag_cache_hits_total") == hits + 1
    client = aioredis.from_url(redis_server.url)
    try:
        namespace = f"rag:{pipeline.settings.app_id}"
        generation = int(await client.get(f"{namespace}:gen:{TENANT}"))
        assert generation >= 1  # the index stage bumped it after its writes
        assert await client.keys(f"{namespace}:answer:{TENANT}:{generation}:*")  # the answer, under it

        async with pipeline.producer() as p:  # a write to the tenant: the harbour document changes
            await p.upsert(TENANT, "harbour", "The lighthouse keepers guard the southern harbour now.", version=2)
        await pipeline.wait_for(
            lambda: pipeline.holds_exactly(TENANT, {("harbour", 2), ("bakery", 1)}), timeout=120, what="v2 indexed"
        )
        assert int(await client.get(f"{namespace}:gen:{TENANT}")) > generation
    finally:
        await client.aclose()

    after = await ask(pipeline)  # no stale read once the write is indexed
    assert after["cached"] is False and ("harbour", 2) in versions(after) and ("harbour", 1) not in versions(after)
    assert (await ask(pipeline))["cached"] is True


async def test_redis_down_the_search_still_answers_uncached(pipeline: Any, redis_server: RedisServer) -> None:
    async with pipeline.producer() as p:
        await p.upsert(TENANT, "harbour", "The lighthouse keepers guard the northern harbour at night.", version=1)
    await pipeline.wait_for(lambda: pipeline.holds_exactly(TENANT, {("harbour", 1)}), timeout=120, what="indexing")
    assert (await ask(pipeline))["cached"] is False
    assert (await ask(pipeline))["cached"] is True
    redis_server.stop()
    try:
        for _ in range(3):
            body = await ask(pipeline)
            assert (body["cached"], body["degraded"]) == (False, False)
            assert ("harbour", 1) in versions(body)
    finally:
        redis_server.start()  # the session's other tests use it
