"""The bulk lane: the chunk stage's second agent sends the bulk raw topic's documents to the bulk
chunks topic, and the embed stage's second agent embeds them; both with the same tables and rules
as the interactive lane."""

from __future__ import annotations

from typing import Any

from rag_streams.adapters.codecs import CHUNK, EMBEDDING, RAW
from rag_streams.observability import metrics
from rag_streams.rules.chunking import chunk_document
from rag_streams.rules.records import RawDocument

from support.agent_app import (
    accepted_versions,
    chunk_bulk_documents,
    chunk_documents,
    embed_bulk_chunks,
    embed_chunks,
    embedded_slots,
    names,
    settle,
)

TEXT = " ".join(f"word{i}" for i in range(60))


def queued(tenant: str, lane: str) -> float:
    return metrics.tenant_chunks_queued_total.labels(tenant, lane)._value.get()


def embedded(tenant: str, lane: str) -> float:
    return metrics.tenant_chunks_embedded_total.labels(tenant, lane)._value.get()


async def test_chunk_stage_sends_bulk_documents_to_the_bulk_lane(sent: Any, fakes: Any) -> None:
    bulk, update = RawDocument("big", "a.md", 1, text=TEXT), RawDocument("small", "b.md", 1, text=TEXT)
    before = queued("big", "bulk"), queued("small", "interactive")
    async with chunk_bulk_documents.test_context() as agent:
        await agent.put(RAW.encode(bulk), key=b"big/a.md", partition=1)
        await agent.put(RAW.encode(RawDocument("big", "a.md", 1, text="a replay")), key=b"big/a.md", partition=1)
    async with chunk_documents.test_context() as agent:
        await agent.put(RAW.encode(update), key=b"small/b.md", partition=1)
        await agent.put(RAW.encode(bulk), key=b"big/a.md", partition=1)  # the same version on the other lane

    to_bulk = [CHUNK.decode(m["value"]) for m in sent.on(names.chunks_bulk)]
    to_interactive = [CHUNK.decode(m["value"]) for m in sent.on(names.chunks)]
    assert to_bulk == chunk_document(bulk, fakes["embedder"], size=20, overlap=4)
    assert to_interactive == chunk_document(update, fakes["embedder"], size=20, overlap=4)
    assert all(m["partition"] == 1 for m in sent.on(names.chunks_bulk))  # co-partitioned: same partition
    assert len(sent.on(names.latest)) == 2  # both are the latest version of their document
    assert accepted_versions["big/a.md"][:2] == [1, False]  # one table for both lanes: the replays were dropped
    assert (queued("big", "bulk"), queued("small", "interactive")) == (
        before[0] + len(to_bulk),
        before[1] + len(to_interactive),
    )


async def test_both_lanes_embed_with_one_set_of_tables(sent: Any, fakes: Any) -> None:
    chunks = chunk_document(RawDocument("big", "a.md", 4, text=TEXT), fakes["embedder"], size=20, overlap=4)
    before = embedded("big", "bulk")
    async with embed_bulk_chunks.test_context() as agent:
        for c in chunks:
            await agent.put(CHUNK.encode(c), key=c.key.encode())
        await settle()
    out = [EMBEDDING.decode(m["value"]) for m in sent.on(names.embeddings)]
    assert [e.chunk_id for e in out] == [c.chunk_id for c in chunks] and all(e.dim == 384 for e in out)
    assert embedded_slots[f"big/a.md/{chunks[0].chunk_index}"] == [4, chunks[0].content_hash]
    assert embedded("big", "bulk") == before + len(chunks)
    async with embed_chunks.test_context() as agent:  # the same version again, on the other lane: a replay
        for c in chunks:
            await agent.put(CHUNK.encode(c), key=c.key.encode())
        await settle()
    assert len(sent.on(names.embeddings)) == len(chunks)
