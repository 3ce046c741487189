"""index: embedding upserts -> version guard -> rate-limited Qdrant upserts -> leftover cleanup."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from rag_streams import metrics
from rag_streams._faust.acks import redelivered_unless_done
from rag_streams._faust.compat import acting_on
from rag_streams.app import app, embeddings_topic, services, settings
from rag_streams.codecs import EMBEDDING
from rag_streams.deadletter import dead_letter
from rag_streams.embedding import from_bytes
from rag_streams.errors import BadInput, PermanentError, retry_transient
from rag_streams.indexing import is_reuse, payload, plan_batch, slot_key
from rag_streams.records import DELETE, EmbeddingUpsert, is_repair
from rag_streams.tables.applied_versions import applied_versions, chunk_slots
from rag_streams.vectorstore import Point
from rag_streams.versions import DocState, Verdict

log = logging.getLogger(__name__)
STAGE = "index"


def decode_upsert(value: bytes | None) -> tuple[EmbeddingUpsert, list[float]]:
    item = EMBEDDING.decode(value)
    if item.op == DELETE or is_reuse(item):
        return item, []
    try:
        return item, from_bytes(item.vector, item.dim).tolist()
    except ValueError as exc:
        raise BadInput(str(exc)) from exc


@app.agent(embeddings_topic)
async def index_embeddings(stream: Any) -> None:
    # take_events acks the whole batch in a `finally:`: every error is handled inside, and the
    # batch's offsets are committed only after its vector store writes were acknowledged.
    async for events in stream.take_events(settings.embed_batch, within=settings.embed_window_s):
        with redelivered_unless_done(app.consumer, events):  # a stop mid-batch: not acked
            await _index_batch(events)
        metrics.messages_processed_total.labels(STAGE).inc(len(events))


async def _index_batch(events: list[Any]) -> None:
    started = time.perf_counter()
    batch: list[tuple[Any, EmbeddingUpsert, list[float]]] = []
    for event in events:
        try:
            batch.append((event, *decode_upsert(event.message.value)))
        except PermanentError as exc:
            await dead_letter(event, exc, stage=STAGE)
    items = [item for _, item, _ in batch]
    plan = plan_batch(
        items,
        {i.key: DocState.from_json(applied_versions.get(i.key)) for i in items},
        {slot_key(i): chunk_slots.get(slot_key(i)) for i in items if i.op != DELETE},
        [is_repair(event.message.headers) for event, _, _ in batch],
    )
    store = services.store()
    failed: set[int] = set()
    for (tenant, version, repair), positions in plan.upserts.items():
        for pos, error in await _upsert_isolating(
            partial(_upsert, store, batch, tenant, version, repair), batch, positions
        ):
            failed.add(pos)
            await dead_letter(batch[pos][0], error, stage=STAGE)
    for (tenant, version), positions in plan.reuses.items():
        updates = [(items[p].chunk_id, payload(items[p])) for p in positions]
        missing = set(await retry_transient(store.reuse, tenant, updates, version=version, what="reuse", attempts=None))
        for p in positions:
            if items[p].chunk_id in missing:  # nothing stored to reuse: only a re-embedding can fix it
                failed.add(p)
                error = PermanentError("unchanged chunk has no stored point to reuse; run verify --repair")
                await dead_letter(batch[p][0], error, stage=STAGE)
    for tenant, doc_id, version in plan.cleanups:
        await retry_transient(store.delete_doc, tenant, doc_id, below_version=version, what="cleanup", attempts=None)
    for tenant, doc_id, version in plan.deletes:
        if await store.has_tenant(tenant):
            await retry_transient(store.delete_doc, tenant, doc_id, upto_version=version, what="delete", attempts=None)
    touched = {key[0] for group in (plan.upserts, plan.reuses) for key in group}
    touched |= {tenant for tenant, _, _ in (*plan.cleanups, *plan.deletes)}
    if touched and (cache := services.cache()) is not None:
        await cache.written(touched)  # acknowledged by the store: cached answers are stale now
    _record(batch, plan, failed)
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    for tenant, count in sorted(Counter(item.tenant_id for item in items).items()):
        log.debug("indexed a batch of %d", count, extra={"stage": STAGE, "tenant": tenant, "duration_ms": duration_ms})


async def _upsert(
    store: Any,
    batch: list[tuple[Any, EmbeddingUpsert, list[float]]],
    tenant: str,
    version: int,
    repair: bool,
    positions: list[int],
) -> None:
    """Upsert these positions' points, rate-limited, retrying transient errors for as long as they last."""
    first = batch[positions[0]][1]
    try:
        await retry_transient(
            store.ensure_tenant, tenant, first.dim, first.model, what="ensure collection", attempts=None
        )
        for start in range(0, len(positions), services.limiter.max_batch):
            part = positions[start : start + services.limiter.max_batch]
            points = [Point(batch[p][1].chunk_id, batch[p][2], payload(batch[p][1])) for p in part]
            await services.limiter.acquire(tenant, len(points))
            started = time.perf_counter()
            await retry_transient(
                store.upsert, tenant, points, version=version, same_version=repair, what="upsert", attempts=None
            )
            metrics.vectorstore_upsert_seconds.observe(time.perf_counter() - started)
            metrics.chunks_indexed_total.labels(tenant).inc(len(points))
    except PermanentError:
        raise
    except Exception as exc:  # retry_transient only gives up on errors is_transient calls permanent
        raise PermanentError(f"vector store refused the write: {type(exc).__name__}: {exc}") from exc


async def _upsert_isolating(
    upsert: Callable[[list[int]], Awaitable[None]], batch: list[Any], positions: list[int]
) -> list[tuple[int, PermanentError]]:
    """Upsert a group; if the store refuses it for good, retry document by document so one bad
    document is dead-lettered alone. Returns the positions that failed, with their error."""
    try:
        await upsert(positions)
        return []
    except PermanentError as exc:
        by_doc: dict[str, list[int]] = {}
        for p in positions:
            by_doc.setdefault(batch[p][1].doc_id, []).append(p)
        if len(by_doc) == 1:
            return [(p, exc) for p in positions]
    failures: list[tuple[int, PermanentError]] = []
    for doc_positions in by_doc.values():
        try:
            await upsert(doc_positions)
        except PermanentError as exc:
            failures += [(p, exc) for p in doc_positions]
    return failures


def _record(batch: list[tuple[Any, EmbeddingUpsert, list[float]]], plan: Any, failed: set[int]) -> None:
    """Write the version tables, each entry under the event that caused it (its changelog partition)."""
    now = time.time()
    for pos, (event, item, _) in enumerate(batch):
        verdict = plan.verdicts[pos]
        if verdict is Verdict.STALE:
            metrics.stale_writes_dropped_total.labels(STAGE).inc()
            continue
        if verdict in (Verdict.DUPLICATE, Verdict.REPAIR) or pos in failed:
            continue
        with acting_on(event):
            if item.key in plan.doc_states:
                applied_versions[item.key] = plan.doc_states[item.key].to_json()
            if item.op != DELETE:
                chunk_slots[slot_key(item)] = plan.slots[slot_key(item)]
        if item.produced_at:
            latency = max(0.0, now - item.produced_at / 1000)
            metrics.pipeline_latency_seconds.labels(STAGE).observe(latency)
            metrics.freshness_seconds.observe(latency)
