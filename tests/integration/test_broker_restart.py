"""The Kafka broker restarts mid-stream: the worker rides it out, and the index ends with zero drift."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.integration

TENANT = "acme"
N_DOCS = 120
WORDS = ["broker", "restart", "leader", "epoch", "fetch", "session", "coordinator", "transaction", "marker", "fence"]


def text_for(i: int, version: int) -> str:
    body = " ".join(WORDS[(i * 5 + j * version) % len(WORDS)] for j in range(80 + (i % 3) * 90))
    return f"Document {i} version {version}. {body}"


async def test_broker_restart_mid_stream_ends_with_zero_drift(pipeline: Any, kafka: Any) -> None:
    async with pipeline.producer() as p:
        for i in range(N_DOCS):
            await p.upsert(TENANT, f"doc-{i}", text_for(i, 1), version=1)

    async def some_indexed() -> bool:
        status, body = await pipeline.api("GET", f"/v1/tenants/{TENANT}/points")
        return status == 200 and len(body["points"]) >= 20

    await pipeline.wait_for(some_indexed, timeout=300, what="the first chunks to be indexed")
    worker_pid = pipeline.worker.proc.pid
    try:
        await asyncio.to_thread(kafka.stop)  # SIGTERM: a clean broker shutdown mid-stream
        await asyncio.sleep(8)  # the worker's fetches, commits and transactions fail meanwhile
    finally:
        await asyncio.to_thread(kafka.start)
    assert pipeline.worker.alive(), "the worker exited while the broker was down"

    async with pipeline.producer() as p:  # writes after the restart: updates and deletes
        for i in range(0, N_DOCS, 3):
            await p.upsert(TENANT, f"doc-{i}", text_for(i, 2), version=2)
        for i in range(1, N_DOCS, 10):
            await p.delete(TENANT, f"doc-{i}", version=3)

    deleted = set(range(1, N_DOCS, 10))
    expected = {f"doc-{i}": (2 if i % 3 == 0 else 1) for i in range(N_DOCS) if i not in deleted}

    async def drained() -> bool:
        return await pipeline.holds_exactly(TENANT, set(expected.items()))

    await pipeline.wait_for(drained, timeout=600, what="the pipeline to drain after the broker restart")
    assert pipeline.worker.alive() and pipeline.worker.proc.pid == worker_pid  # the same process, no restart
    code, report = await pipeline.verify(TENANT)
    assert code == 0, report

    chunk_keys, embed_keys = await pipeline.committed_chunk_keys()
    assert [k for k, n in chunk_keys.items() if n > 1] == []
    assert [k for k, n in embed_keys.items() if n > 1] == []
