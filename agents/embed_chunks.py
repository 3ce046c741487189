"""embed: chunks -> batched sentence-transformers -> embedding upserts (float32 bytes)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from rag_streams import metrics
from rag_streams.app import app, chunks_topic, embeddings_topic, services, settings
from rag_streams.codecs import CHUNK, EMBEDDING
from rag_streams.deadletter import dead_letter
from rag_streams.embedding import to_bytes
from rag_streams.errors import PermanentError, retry_transient
from rag_streams.faust_compat import acting_on
from rag_streams.records import DELETE, Chunk, EmbeddingUpsert
from rag_streams.tables.versions import embedded_slots

log = logging.getLogger(__name__)
STAGE = "embed"


def _slot(chunk: Chunk) -> str:
    return f"{chunk.tenant_id}/{chunk.doc_id}/{chunk.chunk_index}"


def _drop_replays(decoded: list[tuple[Any, Chunk]]) -> list[tuple[Any, Chunk]]:
    """Drop chunk versions already embedded and emitted (replays after a crash or rebalance)."""
    emitted: dict[str, int] = {}
    kept = []
    for event, chunk in decoded:
        if chunk.op != DELETE:
            slot = _slot(chunk)
            seen = emitted.get(slot)
            if seen is None:
                stored = embedded_slots.get(slot)
                seen = int(stored[0]) if stored is not None else -1
            if seen >= chunk.version:
                continue
            emitted[slot] = chunk.version
        kept.append((event, chunk))
    return kept


def with_vector(chunk: Chunk, vector: bytes, model: str, dim: int) -> EmbeddingUpsert:
    return EmbeddingUpsert(
        tenant_id=chunk.tenant_id,
        doc_id=chunk.doc_id,
        version=chunk.version,
        chunk_id=chunk.chunk_id,
        chunk_index=chunk.chunk_index,
        chunk_count=chunk.chunk_count,
        text=chunk.text,
        content_hash=chunk.content_hash,
        vector=vector,
        model=model,
        dim=dim,
        op=chunk.op,
        metadata=chunk.metadata,
        produced_at=chunk.produced_at,
    )


@app.agent(chunks_topic)
async def embed_chunks(stream: Any) -> None:
    # take_events acks the whole batch in a `finally:`: every error is handled inside.
    async for events in stream.take_events(settings.embed_batch, within=settings.embed_window_s):
        await _embed_batch(events)
        metrics.messages_processed_total.labels(STAGE).inc(len(events))


async def _embed_batch(events: list[Any]) -> None:
    decoded: list[tuple[Any, Chunk]] = []
    for event in events:
        try:
            decoded.append((event, CHUNK.decode(event.message.value)))
        except PermanentError as exc:
            await dead_letter(event, exc, stage=STAGE)
    decoded = _drop_replays(decoded)
    embedder = await services.embedder()
    todo = [(event, chunk) for event, chunk in decoded if chunk.op != DELETE]
    vectors: list[bytes] = []
    if todo:
        metrics.embed_batch_size.observe(len(todo))
        try:
            array = await retry_transient(asyncio.to_thread, embedder.embed, [c.text for _, c in todo], what="embed")
        except Exception as exc:  # the model failed on this batch for good: dead-letter it, keep running
            log.exception("embedding a batch of %d failed", len(todo), extra={"stage": STAGE})
            failed = {id(e) for e, _ in todo}
            for event, _ in todo:
                await dead_letter(event, PermanentError(f"embedding failed: {type(exc).__name__}: {exc}"), stage=STAGE)
            decoded = [(e, c) for e, c in decoded if id(e) not in failed]
        else:
            vectors = [to_bytes(row) for row in array]
    it = iter(vectors)
    for event, chunk in decoded:
        out = (
            with_vector(chunk, b"", "", 0)
            if chunk.op == DELETE
            else with_vector(chunk, next(it), embedder.model_name, embedder.dim)
        )
        with acting_on(event):
            await embeddings_topic.send(
                key=event.message.key, value=EMBEDDING.encode(out), partition=event.message.partition
            )
            if chunk.op != DELETE:  # recorded after the send: a crash in between duplicates, never loses
                embedded_slots[_slot(chunk)] = [chunk.version, chunk.content_hash]
        if chunk.produced_at:
            metrics.pipeline_latency_seconds.labels(STAGE).observe(max(0.0, time.time() - chunk.produced_at / 1000))
