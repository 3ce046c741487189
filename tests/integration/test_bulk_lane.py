"""Fairness: one tenant's bulk load (``publish --bulk``) does not hold back another tenant's updates.

The bulk tenant's documents are all published at once through the bulk lane; the other tenant's
updates, published while that backlog is being embedded, must become searchable before the bulk
load is done (without the lane they queue behind all of it: same partitions, consumed in order).
Then the worker is SIGKILLed mid-bulk and restarted: both lanes of a partition commit in one
transaction, so every chunk and embedding is committed exactly once and the index ends exact.
No timing is asserted, only the order in which things become visible.

A document of RAG_BULK_MIN_CHUNKS chunks or more takes the bulk lane without ``--bulk``: one whose
versions cross that size changes lanes, and its newest version still wins.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from rag_streams.adapters.codecs import CHUNK

from support.pipeline import exactly

pytestmark = pytest.mark.integration

BULK, VICTIM = "big", "small"
BULK_DOCS = 30


def bulk_text(i: int, words: int = 600) -> str:
    return f"Bulk document {i}. " + " ".join(f"b{(i * 31 + j) % 997}" for j in range(words))


async def stored_chunks(pipeline: Any, tenant: str) -> int:
    try:
        return len(await pipeline.points(tenant))
    except AssertionError:  # no collection yet
        return 0


async def test_updates_overtake_a_bulk_load_and_both_lanes_stay_exactly_once(pipeline: Any) -> None:
    assert pipeline.settings.bulk_lane  # RAG_BULK_LANE, on by default
    async with pipeline.producer() as p:
        await asyncio.gather(
            *(p.upsert(BULK, f"bulk-{i}", bulk_text(i), version=1, bulk=True) for i in range(BULK_DOCS))
        )

        async def bulk_started() -> bool:
            return await stored_chunks(pipeline, BULK) > 0

        await pipeline.wait_for(bulk_started, timeout=300, what="the bulk load to start")
        overtaken: list[int] = []  # bulk chunks stored when each update was searchable
        for n in range(3):
            await p.upsert(VICTIM, "note", f"Update {n} of a small note about ferries.", version=n + 1)

            async def searchable(version: int = n + 1) -> bool:
                return any(pt["version"] == version for pt in await pipeline.points(VICTIM))

            await pipeline.wait_for(searchable, timeout=300, what=f"update {n} searchable")
            overtaken.append(await stored_chunks(pipeline, BULK))

    chunk_keys, _ = await pipeline.committed_chunk_keys()
    bulk_total = sum(1 for (doc_id, *_), n in chunk_keys.items() if doc_id.startswith("bulk-"))
    assert bulk_total > 150  # a backlog of minutes' worth of model time on this machine
    assert all(stored < bulk_total for stored in overtaken), (overtaken, bulk_total)  # each update overtook it

    pipeline.worker.stop(signal.SIGKILL)  # mid-bulk: both lanes' open transactions abort together
    pipeline.worker.start()
    expected_bulk = {(f"bulk-{i}", 1) for i in range(BULK_DOCS)}
    seen: list[int] = []  # the bulk tenant's stored chunks at each poll: progress, or a stall, on a timeout

    async def bulk_indexed() -> bool:
        points = await pipeline.points(BULK)  # one read a poll: its count, then whether it is exact
        seen.append(len(points))
        return exactly(points, expected_bulk)

    # well inside pytest's 900 s timeout (this takes about 20 s here), so that a stall reports itself
    await pipeline.wait_for(bulk_indexed, timeout=600, what=lambda: f"bulk load indexed (stored chunks {seen[::20]})")
    assert await pipeline.holds_exactly(VICTIM, {("note", 3)})
    chunk_keys, embed_keys = await pipeline.committed_chunk_keys()
    assert [k for k, n in chunk_keys.items() if n > 1] == []
    assert [k for k, n in embed_keys.items() if n > 1] == []
    lanes = {
        topic: {r.key.split(b"/")[0].decode() for r in await pipeline.read_topic(topic)}
        for topic in (
            pipeline.topics.raw,
            pipeline.topics.raw_bulk,
            pipeline.topics.chunks,
            pipeline.topics.chunks_bulk,
        )
    }
    names = pipeline.topics
    assert lanes == {names.raw: {VICTIM}, names.raw_bulk: {BULK}, names.chunks: {VICTIM}, names.chunks_bulk: {BULK}}


async def test_a_document_crossing_the_size_threshold_changes_lanes_and_its_newest_version_wins(
    pipeline: Any,
) -> None:
    """Version 1 is large (3,000 words, dozens of chunks: the bulk lane), version 2 small (interactive:
    it may overtake version 1), version 3 large again: published back to back, the index ends exactly
    at version 3, and each version's chunks went on in the lane of its size."""
    assert pipeline.settings.bulk_min_chunks == 24  # RAG_BULK_MIN_CHUNKS's default
    async with pipeline.producer() as p:
        await p.upsert("shift", "doc", bulk_text(1, words=3000), version=1)
        await p.upsert("shift", "doc", "Version 2 is one short paragraph about lighthouses.", version=2)
        await p.upsert("shift", "doc", bulk_text(3, words=3000), version=3)
    await pipeline.wait_for(
        lambda: pipeline.holds_exactly("shift", {("doc", 3)}), timeout=300, what="version 3 indexed"
    )
    by_lane: dict[str, set[tuple[int, int]]] = {}
    for topic in (pipeline.topics.chunks, pipeline.topics.chunks_bulk):
        chunks = [CHUNK.decode(r.value) for r in await pipeline.read_topic(topic)]
        by_lane[topic] = {(c.version, c.chunk_count) for c in chunks if c.tenant_id == "shift"}
    versions = {topic: {v for v, _ in pairs} for topic, pairs in by_lane.items()}
    assert versions == {pipeline.topics.chunks: {2}, pipeline.topics.chunks_bulk: {1, 3}}, by_lane
    assert all(n >= 24 for _, n in by_lane[pipeline.topics.chunks_bulk])
    points = await pipeline.points("shift")
    assert {pt["version"] for pt in points} == {3} and len(points) == points[0]["chunk_count"] >= 24
