"""Index health on the index agent's own tables: the expected count follows what the agent applied
(upserts, a shrink, a delete), the gauges carry it, a point lost behind the pipeline's back shows as a
mismatch, and an unexplained fall is logged as a sudden drop."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rag_streams.adapters.codecs import EMBEDDING
from rag_streams.http.stats import tenant_stats
from rag_streams.observability import metrics
from rag_streams.observability.index_health import IndexHealth, TenantHealth
from rag_streams.rules.index_health import TenantCounts
from rag_streams.rules.records import DELETE, RawDocument

from support.agent_app import index_embeddings, pipeline, settle, upserts

LONG = " ".join(f"word{i}" for i in range(60))


def gauge(name: str, tenant: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, {"tenant": tenant})


async def test_expected_points_follow_the_index_agent_and_a_lost_point_is_a_mismatch(sent: Any, fakes: Any) -> None:
    emb, store = fakes["embedder"], fakes["store"]
    health = IndexHealth(pipeline)
    a1 = upserts(RawDocument("acme", "a.md", 1, text=LONG), emb)
    b1 = upserts(RawDocument("acme", "b.md", 1, text=LONG), emb)
    a2 = upserts(RawDocument("acme", "a.md", 2, text="just a few words now"), emb)  # shrinks to one chunk
    b_del = upserts(RawDocument("acme", "b.md", 3, op=DELETE), emb)
    c1 = upserts(RawDocument("beta", "c.md", 1, text=LONG), emb)
    assert len(a1) > 2 and len(a2) == 1
    async with index_embeddings.test_context() as agent:
        for u in [*a1, *b1, *c1]:
            await agent.put(EMBEDDING.encode(u), key=u.key.encode())
        await settle()
        (acme, beta) = await health.check()
        assert (acme.points, acme.counts) == (len(a1) + len(b1), TenantCounts(2, 0, len(a1) + len(b1)))
        assert (beta.tenant, beta.points, beta.counts.expected_points) == ("beta", len(c1), len(c1))
        for u in [*a2, *b_del]:
            await agent.put(EMBEDDING.encode(u), key=u.key.encode())
        await settle()

    (acme, beta) = await health.check()
    assert await store.count("acme") == 1  # a.md's one chunk; b.md deleted
    assert (acme.points, acme.counts) == (1, TenantCounts(documents=1, deleted_documents=1, expected_points=1))
    health.export([acme, beta])
    assert (gauge("rag_index_points", "acme"), gauge("rag_index_expected_points", "acme")) == (1, 1)
    assert gauge("rag_index_points", "beta") == len(c1)

    await store.delete_doc("beta", "c.md")  # behind the pipeline's back
    await health.tick()
    assert (gauge("rag_index_points", "beta"), gauge("rag_index_expected_points", "beta")) == (0, len(c1))
    stats = await tenant_stats(health, "beta")
    assert stats is not None
    assert (stats["points"], stats["expected_points"], stats["documents"]) == (0, len(c1), 1)
    assert stats["collection"] == "rag_beta__v1" and stats["dim"] == 384 and stats["model"] == "hashing-fake"
    assert stats["complete"] is False and stats["mismatch"] is None  # test_context: no partitions assigned
    assert await tenant_stats(health, "nobody") is None


def test_an_unexplained_fall_is_logged_as_a_sudden_drop(caplog: pytest.LogCaptureFixture) -> None:
    health = IndexHealth(pipeline)
    caplog.set_level(logging.WARNING, logger="rag_streams.observability.index_health")
    health.export([TenantHealth("acme", 10_000, TenantCounts(10, 0, 10_000))])
    health.export([TenantHealth("acme", 5_000, TenantCounts(5, 0, 5_000))])  # deletes: expected fell too
    assert not caplog.records
    health.export([TenantHealth("acme", 1_000, TenantCounts(5, 0, 5_000))])
    (record,) = caplog.records
    assert record.getMessage() == "index health: 4000 points lost from the store, not by deletes"
    health.export([])  # a tenant no longer seen loses its gauges
    assert gauge("rag_index_points", "acme") is None
