"""embed: chunks -> batched sentence-transformers -> embedding upserts (float32 bytes)."""

from __future__ import annotations

import logging
import time
from typing import Any

from rag_streams import metrics
from rag_streams._faust.acks import redelivered_unless_done
from rag_streams._faust.commit_gate import emitting_for
from rag_streams.app import app, chunks_topic, embeddings_topic, services, settings
from rag_streams.codecs import CHUNK, EMBEDDING
from rag_streams.deadletter import dead_letter
from rag_streams.embed_plan import Action, plan_embeddings, slot_of
from rag_streams.embedding import Embedder, to_bytes
from rag_streams.errors import PermanentError, retry_transient
from rag_streams.records import DELETE, REPAIR_HEADERS, Chunk, EmbeddingUpsert, is_repair
from rag_streams.tables.embedded_versions import embedded_docs, embedded_slots

log = logging.getLogger(__name__)
STAGE = "embed"


async def _embed(embedder: Embedder, texts: list[str]) -> list[bytes]:
    started = time.perf_counter()
    try:
        array = await retry_transient(services.run_model, embedder.embed, texts, what="embed")
    finally:
        metrics.embed_model_seconds_total.inc(time.perf_counter() - started)
    return [to_bytes(row) for row in array]


async def _embed_isolating(embedder: Embedder, texts: list[str]) -> tuple[dict[int, bytes], dict[int, PermanentError]]:
    """Embed a batch; if the model fails on it for good, embed chunk by chunk so only the chunks
    it fails on are returned as failed (by position), the rest with their vectors."""
    try:
        return dict(enumerate(await _embed(embedder, texts))), {}
    except Exception as exc:  # any model error: find the chunks it belongs to
        log.exception("embedding a batch of %d failed; embedding one by one", len(texts), extra={"stage": STAGE})
        if len(texts) == 1:
            return {}, {0: PermanentError(f"embedding failed: {type(exc).__name__}: {exc}")}
    vectors: dict[int, bytes] = {}
    failed: dict[int, PermanentError] = {}
    for i, text in enumerate(texts):
        try:
            vectors[i] = (await _embed(embedder, [text]))[0]
        except Exception as exc:  # this chunk's own failure
            log.exception("embedding chunk %d of the batch failed", i, extra={"stage": STAGE})
            failed[i] = PermanentError(f"embedding failed: {type(exc).__name__}: {exc}")
    return vectors, failed


@app.agent(chunks_topic)
async def embed_chunks(stream: Any) -> None:
    # take_events acks the whole batch in a `finally:`: every error is handled inside.
    async for events in stream.take_events(settings.embed_batch, within=settings.embed_window_s):
        with redelivered_unless_done(app.consumer, events):  # a stop mid-batch: not acked
            await _embed_batch(events)
        metrics.messages_processed_total.labels(STAGE).inc(len(events))


async def _embed_batch(events: list[Any]) -> None:
    decoded: list[tuple[Any, Chunk]] = []
    for event in events:
        try:
            decoded.append((event, CHUNK.decode(event.message.value)))
        except PermanentError as exc:
            await dead_letter(event, exc, stage=STAGE)
    chunks = [c for _, c in decoded]
    repairs = [is_repair(e.message.headers) for e, _ in decoded]
    plan = plan_embeddings(
        chunks,
        repairs,
        {c.key: embedded_docs.get(c.key) for c in chunks},
        {slot_of(c): embedded_slots.get(slot_of(c)) for c in chunks if c.op != DELETE},
    )
    # each tenant's chunks are embedded with the model of its current collection (see reindex)
    embedders: dict[str, Embedder] = {}
    for tenant in sorted({c.tenant_id for c in chunks}):
        embedders[tenant] = await services.embedder(await services.tenant_model(tenant))
    todo: dict[int, list[int]] = {}  # positions to embed, per embedder
    for pos, action in enumerate(plan.actions):
        if action is Action.EMBED:
            todo.setdefault(id(embedders[chunks[pos].tenant_id]), []).append(pos)
    vectors: dict[int, bytes] = {}
    for positions in todo.values():
        embedder = embedders[chunks[positions[0]].tenant_id]
        metrics.embed_batch_size.observe(len(positions))
        embedded, failed = await _embed_isolating(embedder, [chunks[p].text for p in positions])
        vectors.update({positions[i]: vector for i, vector in embedded.items()})
        for i, error in failed.items():  # the model failed on this chunk for good: dead-letter it
            await dead_letter(decoded[positions[i]][0], error, stage=STAGE)
    for pos, ((event, chunk), action) in enumerate(zip(decoded, plan.actions, strict=True)):
        embedder = embedders[chunk.tenant_id]
        if action is Action.DROP or (action is Action.EMBED and pos not in vectors):
            continue
        if action is Action.REUSE:
            metrics.embed_skipped_unchanged_total.inc()
            out = EmbeddingUpsert.of(chunk, b"", embedder.model_name, 0)  # dim 0: keep the stored vector
        elif action is Action.EMBED:
            out = EmbeddingUpsert.of(chunk, vectors[pos], embedder.model_name, embedder.dim)
        else:
            out = EmbeddingUpsert.of(chunk, b"", "", 0)
        async with emitting_for(event):  # the output and its table rows: no commit between
            await embeddings_topic.send(
                key=event.message.key,
                value=EMBEDDING.encode(out),
                partition=event.message.partition,
                headers=REPAIR_HEADERS if repairs[pos] else None,
            )
            # in the send's transaction: a replay of this event finds them and is dropped
            for table, key, value in plan.writes_by_position.get(pos, []):
                target = embedded_slots if table == "slot" else embedded_docs
                if value is None:
                    if key in target:
                        del target[key]
                else:
                    target[key] = value
        if chunk.produced_at:
            metrics.pipeline_latency_seconds.labels(STAGE).observe(max(0.0, time.time() - chunk.produced_at / 1000))
