"""index: embedding upserts -> version guard -> rate-limited Qdrant upserts -> leftover cleanup."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from rag_streams.adapters.codecs import EMBEDDING
from rag_streams.adapters.embedding import from_bytes
from rag_streams.errors import BadInput
from rag_streams.observability import metrics, stage_tracing, tracing
from rag_streams.pipeline.index_store import apply_plan
from rag_streams.rules.indexing import is_reuse, plan_batch, slot_key
from rag_streams.rules.records import DELETE, EmbeddingUpsert, is_repair, retag_of
from rag_streams.rules.versions import DocState, Verdict
from rag_streams.tables.versions import applied_versions, chunk_slots

if TYPE_CHECKING:
    from rag_streams.pipeline.app import Pipeline

log = logging.getLogger(__name__)
STAGE = "index"


def decode_upsert(value: bytes | None, headers: Any = None) -> tuple[EmbeddingUpsert, list[float]]:
    retag_of(headers)  # a malformed retag header: dead-lettered with the record
    item = EMBEDDING.decode(value)
    if item.op == DELETE or is_reuse(item):
        return item, []
    try:
        return item, from_bytes(item.vector, item.dim).tolist()
    except ValueError as exc:
        raise BadInput(str(exc)) from exc


def register(p: Pipeline) -> Any:
    runtime, services = p.runtime(STAGE), p.services
    applied, slots = applied_versions(p), chunk_slots(p)

    async def handle_batch(events: list[Any]) -> None:
        started = time.perf_counter()
        decoded = await runtime.decoded(events, lambda e: decode_upsert(e.message.value, e.message.headers))
        items = [item for _, (item, _) in decoded]
        retags = [retag_of(event.message.headers) for event, _ in decoded]
        plan = plan_batch(
            items,
            {i.key: DocState.from_json(applied.get(i.key)) for i in items},
            {
                slot_key(i): slots.get(slot_key(i))
                for i, r in zip(items, retags, strict=True)
                if i.op != DELETE and r is None
            },
            [is_repair(event.message.headers) for event, _ in decoded],
            retags,
        )
        if tracing.enabled():  # each document's span: its version, its chunks by verdict
            for pos, (event, (item, _)) in enumerate(decoded):
                stage_tracing.annotate(event, item, **{f"chunks_{plan.verdicts[pos].value}": 1})
        failed, touched = await apply_plan(
            services.store(), services.limiter, plan, items, [vector for _, (_, vector) in decoded]
        )
        for pos, error in failed.items():
            await runtime.dead_letter(decoded[pos][0], error)
        if touched and (cache := services.cache()) is not None:
            await cache.written(touched)  # acknowledged by the store: cached answers are stale now
        if (fallback := services.fallback()) is not None:  # superseded versions leave the fallback index
            fallback.written(
                (i.tenant_id, i.doc_id, i.version, i.op == DELETE) for n, i in enumerate(items) if n not in failed
            )
        now = time.time()
        for pos, (event, (item, _)) in enumerate(decoded):  # each row under the event that caused it
            verdict = plan.verdicts[pos]
            if verdict is Verdict.STALE:
                metrics.stale_writes_dropped_total.labels(STAGE).inc()
                continue
            if verdict in (Verdict.DUPLICATE, Verdict.REPAIR) or pos in failed:
                continue
            with runtime.record(event):
                if item.key in plan.doc_states:
                    applied[item.key] = plan.doc_states[item.key].to_json()
                if item.op != DELETE and retags[pos] is None:  # a retag leaves the slot rows as they are
                    slots[slot_key(item)] = plan.slots[slot_key(item)]
            if (latency := runtime.observe(item.produced_at, now=now)) is not None:
                metrics.freshness_seconds.observe(latency)
                metrics.tenant_freshness_seconds.labels(item.tenant_id).observe(latency)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        for tenant, count in sorted(Counter(item.tenant_id for item in items).items()):
            extra = {"stage": STAGE, "tenant": tenant, "duration_ms": duration_ms}
            log.debug("indexed a batch of %d", count, extra=extra)

    app = p.app

    @app.agent(p.topic("embeddings"), name=f"{__name__}.index_embeddings")
    async def index_embeddings(stream: Any) -> None:
        # every error is handled inside; a batch's offsets are committed only after its store
        # writes were acknowledged
        await runtime.batches(stream, handle_batch)

    return index_embeddings
