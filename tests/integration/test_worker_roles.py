"""Stages scale independently: one chunk worker, two embed workers, one index worker on the real
broker. Stopping one embed worker moves its partitions to the other; the index ends with zero drift."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp
import pytest

pytestmark = pytest.mark.integration

TENANT = "acme"
WORDS = ["role", "scale", "embed", "worker", "partition", "assignor", "rebalance", "group", "member", "lag"]


def text_for(i: int, version: int) -> str:
    body = " ".join(WORDS[(i * 3 + j * version) % len(WORDS)] for j in range(70 + (i % 3) * 100))
    return f"Document {i} version {version}. {body}"


def port_of(worker: Any) -> int:
    return int(worker.env["RAG_WEB_PORT"])


async def test_two_embed_workers_share_then_hand_over_and_the_index_ends_with_zero_drift(idle_pipeline: Any) -> None:
    pipeline = idle_pipeline
    index = pipeline.worker_with("index", port=pipeline.port)  # serves the API the checks read
    chunk = pipeline.worker_with("chunk")
    embed_a, embed_b = pipeline.worker_with("embed-a"), pipeline.worker_with("embed-b")
    workers = {"index": index, "chunk": chunk, "embed": embed_a}
    try:
        for role, worker in [*workers.items(), ("embed", embed_b)]:
            worker.start(role)
        for worker in (index, chunk, embed_a, embed_b):
            await pipeline.wait_for(_healthy(worker), timeout=180, what=f"worker {worker.log.name}")

        async with pipeline.producer() as p:
            for i in range(90):
                await p.upsert(TENANT, f"doc-{i}", text_for(i, 1), version=1)

        async def both_embedding() -> bool:
            counts = [await _embedded(pipeline, w) for w in (embed_a, embed_b)]
            return all(n > 0 for n in counts)

        await pipeline.wait_for(both_embedding, timeout=150, what="both embed workers to get partitions")
        embed_a.stop(signal.SIGTERM)  # a clean scale-down: the group rebalances
        assert embed_a.proc is not None and embed_a.proc.returncode is not None
        before = await _embedded(pipeline, embed_b)

        async with pipeline.producer() as p:
            for i in range(90, 150):
                await p.upsert(TENANT, f"doc-{i}", text_for(i, 1), version=1)
            for i in range(0, 150, 4):
                await p.upsert(TENANT, f"doc-{i}", text_for(i, 2), version=2)
            for i in range(3, 150, 25):
                await p.delete(TENANT, f"doc-{i}", version=3)

        deleted = set(range(3, 150, 25))
        expected = {(f"doc-{i}", 2 if i % 4 == 0 else 1) for i in range(150) if i not in deleted}

        async def drained() -> bool:
            return await pipeline.holds_exactly(TENANT, expected)

        await pipeline.wait_for(drained, timeout=600, what="the split pipeline to drain")
        assert await _embedded(pipeline, embed_b) > before  # the survivor took over the stopped worker's work
        # no worker was fenced out of its transactions and crashed on the way
        assert [w.log.name for w in (index, chunk, embed_b) if not w.alive()] == []
        code, report = await pipeline.verify(TENANT)
        assert code == 0, report
        chunk_keys, embed_keys = await pipeline.committed_chunk_keys()
        assert [k for k, n in chunk_keys.items() if n > 1] == []
        assert [k for k, n in embed_keys.items() if n > 1] == []
    finally:
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in (index, chunk, embed_a, embed_b)))


def _healthy(worker: Any) -> Any:
    async def check() -> bool:
        if not worker.alive():
            raise AssertionError(f"worker exited; log:\n{worker.log.read_text()[-3000:]}")
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(f"http://127.0.0.1:{port_of(worker)}/healthz") as resp,
        ):
            return resp.status == 200

    return check


async def _embedded(pipeline: Any, worker: Any) -> float:
    return await pipeline.metric('rag_messages_processed_total{stage="embed"}', port=port_of(worker))
