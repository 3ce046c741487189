"""The bulk lane: the chunk stage's second agent sends the bulk raw topic's documents to the bulk
chunks topic, and the embed stage's second agent embeds them; both with the same tables and rules
as the interactive lane."""

from __future__ import annotations

from typing import Any

from rag_streams.adapters.codecs import CHUNK, EMBEDDING, RAW
from rag_streams.observability import metrics
from rag_streams.rules.chunking import chunk_document
from rag_streams.rules.records import LARGE_HEADERS, RawDocument, is_large, retag_of

from support.agent_app import (
    accepted_versions,
    chunk_bulk_documents,
    chunk_documents,
    embed_bulk_chunks,
    embed_chunks,
    embedded_slots,
    names,
    settings,
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
    assert not any(is_large(m["headers"]) for m in sent.on(names.chunks_bulk))  # a bulk load: small batches
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


async def test_the_bulk_lane_embeds_a_large_document_in_full_batches_and_a_bulk_load_in_small_ones(
    sent: Any, fakes: Any
) -> None:
    text = " ".join(f"word{i}" for i in range(300))
    large = chunk_document(RawDocument("acme", "large.md", 1, text=text), fakes["embedder"], size=20, overlap=4)
    loaded = chunk_document(RawDocument("big", "load.md", 1, text=text), fakes["embedder"], size=20, overlap=4)
    assert len(large) >= 2 * settings.embed_batch and settings.bulk_embed_batch < settings.embed_batch
    calls = fakes["embedder"].calls
    async with embed_bulk_chunks.test_context() as agent:
        start = len(calls)
        for c in large:  # marked by the chunk stage: a large document published as an update
            await agent.put(CHUNK.encode(c), key=c.key.encode(), headers=LARGE_HEADERS)
        await settle()
        large_calls = calls[start:]
        start = len(calls)
        for c in loaded:  # publish --bulk
            await agent.put(CHUNK.encode(c), key=c.key.encode())
        await settle()
        load_calls = calls[start:]
    assert sum(large_calls) == len(large) and sum(load_calls) == len(loaded)
    assert max(large_calls) > settings.bulk_embed_batch and max(large_calls) <= settings.embed_batch
    assert max(load_calls) <= settings.bulk_embed_batch  # an update waits for at most one of these


async def test_a_large_document_takes_the_bulk_lane_and_its_unchanged_retag_does_not(sent: Any, fakes: Any) -> None:
    big_text = " ".join(f"word{i}" for i in range(600))  # RAG_BULK_MIN_CHUNKS (24) chunks and more
    big, small = RawDocument("acme", "big.md", 1, text=big_text), RawDocument("acme", "small.md", 1, text=TEXT)
    big_chunks = chunk_document(big, fakes["embedder"], size=20, overlap=4)
    assert (
        len(big_chunks) >= settings.bulk_min_chunks > len(chunk_document(small, fakes["embedder"], size=20, overlap=4))
    )
    before = queued("acme", "bulk"), queued("acme", "interactive")
    async with chunk_documents.test_context() as agent:  # both published to the interactive lane
        await agent.put(RAW.encode(big), key=b"acme/big.md", partition=2)
        await agent.put(RAW.encode(small), key=b"acme/small.md", partition=2)
        await agent.put(RAW.encode(RawDocument("acme", "big.md", 2, text=big_text)), key=b"acme/big.md", partition=2)

    to_bulk = [CHUNK.decode(m["value"]) for m in sent.on(names.chunks_bulk)]
    to_interactive = [CHUNK.decode(m["value"]) for m in sent.on(names.chunks)]
    assert to_bulk == big_chunks  # every chunk of the large document, in order, on its partition
    assert all(m["partition"] == 2 for m in sent.on(names.chunks_bulk))
    # marked large: the embed stage gives them the interactive lane's batch size, not the bulk load's
    assert all(is_large(m["headers"]) for m in sent.on(names.chunks_bulk))
    assert not any(is_large(m["headers"]) for m in sent.on(names.chunks))
    # the small document, then version 2 of the large one: unchanged, one retag record, nothing to embed
    assert [(c.doc_id, c.version) for c in to_interactive] == [("small.md", 1)] * (len(to_interactive) - 1) + [
        ("big.md", 2)
    ]
    assert retag_of(sent.on(names.chunks)[-1]["headers"]) == 1
    assert (queued("acme", "bulk"), queued("acme", "interactive")) == (
        before[0] + len(to_bulk),
        before[1] + len(to_interactive),
    )
