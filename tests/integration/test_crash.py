"""A worker killed with SIGKILL mid-stream: exactly-once between topics, exact final state after restart."""

from __future__ import annotations

import signal
from collections import Counter
from typing import Any

import pytest

from rag_streams.codecs import CHUNK, EMBEDDING

pytestmark = pytest.mark.integration

WORDS = [
    "kafka",
    "stream",
    "chunk",
    "vector",
    "tenant",
    "replay",
    "offset",
    "commit",
    "broker",
    "partition",
    "model",
    "index",
]


def text_for(i: int, version: int) -> str:
    # two to three chunks per document with the default 200-token windows
    body = " ".join(WORDS[(i * 7 + j * version) % len(WORDS)] for j in range(300 + (i % 3) * 60))
    return f"Document {i} version {version}. {body}"


async def test_sigkill_mid_stream_no_duplicates_and_exact_final_state(pipeline: Any) -> None:
    n_docs = 60
    async with pipeline.producer() as p:
        for i in range(n_docs):
            await p.upsert("acme", f"doc-{i}", text_for(i, 1), version=1)

    async def some_indexed() -> bool:
        return len(await pipeline.points("acme")) > 5 if await _has_collection(pipeline) else False

    await pipeline.wait_for(some_indexed, timeout=180, what="the first chunks to be indexed")
    pipeline.worker.stop(signal.SIGKILL)

    async with pipeline.producer() as p:  # updates and deletes arrive while the worker is down
        for i in range(0, n_docs, 4):
            await p.upsert("acme", f"doc-{i}", text_for(i, 2), version=2)
        for i in range(1, n_docs, 10):
            await p.delete("acme", f"doc-{i}", version=3)
    await pipeline.restart()

    deleted = set(range(1, n_docs, 10))
    expected_docs = {f"doc-{i}": (2 if i % 4 == 0 else 1) for i in range(n_docs) if i not in deleted}

    async def drained() -> bool:
        return await pipeline.holds_exactly("acme", set(expected_docs.items()))

    await pipeline.wait_for(drained, timeout=400, what="the pipeline to drain after the restart")
    points = await pipeline.points("acme")
    assert {(pt["doc_id"], pt["version"]) for pt in points} == set(expected_docs.items())
    assert len({pt["id"] for pt in points}) == len(points)

    # read_committed consumers of the chunk and embedding topics see every record once.
    chunk_keys = Counter(
        (c.doc_id, c.version, c.chunk_index, c.op)
        for c in (CHUNK.decode(r.value) for r in await pipeline.read_topic(pipeline.topics.chunks))
    )
    embed_keys = Counter(
        (e.doc_id, e.version, e.chunk_index, e.op)
        for e in (EMBEDDING.decode(r.value) for r in await pipeline.read_topic(pipeline.topics.embeddings))
    )
    assert [k for k, n in chunk_keys.items() if n > 1] == []
    assert [k for k, n in embed_keys.items() if n > 1] == []
    assert set(embed_keys) == set(chunk_keys)


async def _has_collection(pipeline: Any) -> bool:
    status, body = await pipeline.api("GET", "/v1/tenants/acme/points")
    return status == 200 and bool(body["points"])
