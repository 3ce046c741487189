"""embed: chunks -> batched sentence-transformers -> embedding upserts (float32 bytes)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag_streams.adapters.codecs import CHUNK, EMBEDDING
from rag_streams.adapters.embedding import Embedder
from rag_streams.errors import PermanentError
from rag_streams.observability import metrics, stage_tracing, tracing
from rag_streams.pipeline.embed_model import ModelBatches
from rag_streams.pipeline.lanes import bulk_pieces
from rag_streams.rules.embed_plan import Action, EmbedPlan, plan_embeddings, slot_of
from rag_streams.rules.records import DELETE, REPAIR_HEADERS, Chunk, EmbeddingUpsert, is_large, is_repair, retag_of
from rag_streams.rules.retag import retag_headers
from rag_streams.tables.versions import embedded_docs, embedded_slots

if TYPE_CHECKING:
    from rag_streams.pipeline.app import Pipeline

log = logging.getLogger(__name__)
STAGE = "embed"


def output(chunk: Chunk, action: Action, vector: bytes | None, embedder: Embedder) -> EmbeddingUpsert:
    """The record the embed stage emits for a chunk it did not drop."""
    if action is Action.REUSE:
        metrics.embed_skipped_unchanged_total.inc()
        return EmbeddingUpsert.of(chunk, b"", embedder.model_name, 0)  # dim 0: keep the stored vector
    if action is Action.RETAG:  # the whole document unchanged: its chunks are not embedded
        metrics.embed_skipped_unchanged_total.inc(chunk.chunk_count)
        metrics.retagged_total.labels(STAGE).inc()
        return EmbeddingUpsert.of(chunk, b"", embedder.model_name, 0)
    if action is Action.EMBED:
        assert vector is not None
        return EmbeddingUpsert.of(chunk, vector, embedder.model_name, embedder.dim)
    return EmbeddingUpsert.of(chunk, b"", "", 0)  # a delete


@dataclass(frozen=True)
class Take:
    """One take of the stage: its decoded events and what was decided for them, by position."""

    decoded: list[tuple[Any, Chunk]]
    plan: EmbedPlan
    embedders: dict[str, Embedder]  # per tenant: the model of its current collection
    repairs: list[bool]
    retags: list[int | None]


def model_batches(
    chunks: list[Chunk], actions: list[Action], embedders: dict[str, Embedder], size: int
) -> list[list[int]]:
    """The positions to embed, in model batches of up to ``size`` (RAG_EMBED_BATCH), each of one
    embedder (a tenant's model), in the order of their first position: the order they are sent in."""
    by_model: dict[int, list[int]] = {}
    for pos, action in enumerate(actions):
        if action is Action.EMBED:
            by_model.setdefault(id(embedders[chunks[pos].tenant_id]), []).append(pos)
    batches = [ps[i : i + size] for ps in by_model.values() for i in range(0, len(ps), size)]
    return sorted(batches, key=lambda b: b[0])


def decode(event: Any) -> Chunk:
    retag_of(event.message.headers)  # a malformed retag header: dead-lettered with the record
    return CHUNK.decode(event.message.value)


def headers_of(repair: bool, retag: int | None) -> list[tuple[str, bytes]] | None:
    """The markers an output carries on: a repair replay's, a retag's previous version."""
    return REPAIR_HEADERS if repair else retag_headers(retag) if retag is not None else None


def register(p: Pipeline) -> Any:
    runtime, services = p.runtime(STAGE), p.services
    slots, docs = embedded_slots(p), embedded_docs(p)
    embeddings_topic = p.topic("embeddings")

    async def handle_batch(events: list[Any], lane: str) -> None:
        """One batch of a lane (the runtime takes its turn: rag_streams.pipeline.lanes)."""
        decoded = await runtime.decoded(events, decode)
        for tenant, count in Counter(c.tenant_id for _, c in decoded).items():
            metrics.tenant_chunks_embedded_total.labels(tenant, lane).inc(count)
        chunks = [c for _, c in decoded]
        repairs = [is_repair(e.message.headers) for e, _ in decoded]
        retags = [retag_of(e.message.headers) for e, _ in decoded]
        plan = plan_embeddings(
            chunks,
            repairs,
            {c.key: docs.get(c.key) for c in chunks},
            {
                slot_of(c): slots.get(slot_of(c))
                for c, r in zip(chunks, retags, strict=True)
                if c.op != DELETE and r is None
            },
            retags,
        )
        if tracing.enabled():  # each document's span: its version, its chunks by action
            for (event, chunk), action in zip(decoded, plan.actions, strict=True):
                stage_tracing.annotate(event, chunk, **{f"chunks_{action.value}": 1})
        # each tenant's chunks are embedded with the model of its current collection (see reindex)
        embedders: dict[str, Embedder] = {}
        for tenant in sorted({c.tenant_id for c in chunks}):
            embedders[tenant] = await services.embedder(await services.tenant_model(tenant))
        take = Take(decoded, plan, embedders, repairs, retags)
        async with ModelBatches(services.run_model) as model:
            for positions in model_batches(chunks, plan.actions, embedders, p.settings.embed_batch):
                embedder = embedders[chunks[positions[0]].tenant_id]
                span = tracing.span("embed.model", {"rag.model": embedder.model_name, "rag.texts": len(positions)})
                model.submit(embedder, positions, [chunks[i].text for i in positions], span=span)
            for pos, (event, _) in enumerate(decoded):
                await handle_one(take, model, pos)
                runtime.handled(event)  # its offset commits with its outputs, before the take ends

    async def handle_one(take: Take, model: ModelBatches, pos: int) -> None:
        """The output of the take's chunk at ``pos`` (or its dead letter, or nothing), in its transaction."""
        (event, chunk), action, plan = take.decoded[pos], take.plan.actions[pos], take.plan
        if action is Action.REFUSE:  # nothing to retag: never lost silently
            await runtime.dead_letter(event, PermanentError(plan.refusals[pos]))
            return
        vector = None
        if action is Action.EMBED:
            vector, error = await model.result(pos)  # its batch done, the next ones still running
            if error is not None:  # the model failed on this chunk for good: dead-letter it
                await runtime.dead_letter(event, error)
                return
        if action is Action.DROP:
            return
        out = output(chunk, action, vector, take.embedders[chunk.tenant_id])
        async with runtime.emit(event):  # the output and its table rows: no commit between
            await embeddings_topic.send(
                key=event.message.key,
                value=EMBEDDING.encode(out),
                partition=event.message.partition,
                headers=tracing.inject(headers_of(take.repairs[pos], take.retags[pos])),
            )
            # in the send's transaction: a replay of this event finds them and is dropped
            for table, key, value in plan.writes_by_position.get(pos, []):
                target = slots if table == "slot" else docs
                if value is None:
                    if key in target:
                        del target[key]
                else:
                    target[key] = value
        runtime.observe(chunk.produced_at)

    app = p.app

    @app.agent(p.topic("chunks"), name=f"{__name__}.embed_chunks")
    async def embed_chunks(stream: Any) -> None:
        # a take of several model batches: they run back to back while the sends go (ModelBatches)
        size = p.settings.embed_batch * p.settings.embed_batches_per_take
        await runtime.batches(stream, handle_batch, size=size, lane="interactive")

    if p.settings.bulk_lane:  # RAG_BULK_LANE

        def bulk_take(events: list[Any]) -> list[list[Any]]:
            # a bulk load's chunks RAG_BULK_EMBED_BATCH a turn, a large document's RAG_EMBED_BATCH
            return bulk_pieces(
                events,
                lambda event: is_large(event.message.headers),
                size=p.settings.bulk_embed_batch,
                large_size=p.settings.embed_batch,
            )

        @app.agent(p.topic("chunks_bulk"), name=f"{__name__}.embed_bulk_chunks")
        async def embed_bulk_chunks(stream: Any) -> None:
            size = max(p.settings.bulk_embed_batch, p.settings.embed_batch)
            await runtime.batches(stream, handle_batch, size=size, lane="bulk", pieces=bulk_take)

    return embed_chunks
