"""The index stage's store work: apply a batch's plan (:func:`rag_streams.rules.indexing.plan_batch`) to
the vector store, rate-limited, retrying transient errors for as long as they last, and isolating
what the store refuses for good so one bad document is dead-lettered alone.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from rag_streams.adapters.ratelimit import UpsertLimiter
from rag_streams.adapters.store.base import Point, VectorStore
from rag_streams.errors import PermanentError, retry_transient
from rag_streams.observability import metrics, stage_tracing
from rag_streams.rules.indexing import Plan, payload, retag_payload
from rag_streams.rules.records import EmbeddingUpsert

__all__ = ["apply_plan"]

#: Failures of a batch, by position: the store refused them for good.
Failures = dict[int, PermanentError]


async def apply_plan(
    store: VectorStore,
    limiter: UpsertLimiter,
    plan: Plan,
    items: Sequence[EmbeddingUpsert],
    vectors: Sequence[list[float]],
) -> tuple[Failures, set[str]]:
    """Apply ``plan`` (positions into ``items``/``vectors``); returns the failures and the tenants
    whose data changed (their cached answers are stale)."""
    failed: Failures = {}
    for (tenant, version, repair), positions in plan.upserts.items():

        async def upsert(part: list[int], tenant: str = tenant, version: int = version, repair: bool = repair) -> None:
            await _upsert(store, limiter, tenant, version, repair, [(items[p], vectors[p]) for p in part])

        failed.update(await _isolating(upsert, items, positions))
    for (tenant, version), positions in plan.reuses.items():
        updates = [(items[p].chunk_id, payload(items[p])) for p in positions]
        with stage_tracing.store_write("vectorstore.reuse", tenant, [items[p] for p in positions]):
            missing = set(
                await retry_transient(store.reuse, tenant, updates, version=version, what="reuse", attempts=None)
            )
        for p in positions:
            if items[p].chunk_id in missing:  # nothing stored to reuse: only a re-embedding can fix it
                failed[p] = PermanentError("unchanged chunk has no stored point to reuse; run verify --repair")
    for retag in plan.retags:  # an unchanged document: one filtered payload update moves its points
        item = items[retag.position]
        with stage_tracing.store_write("vectorstore.retag", item.tenant_id, [item]):
            found = await retry_transient(
                store.retag,
                item.tenant_id,
                item.doc_id,
                retag_payload(item),
                previous=retag.previous,
                version=item.version,
                expect=item.chunk_count,
                what="retag",
                attempts=None,
            )
        if found != item.chunk_count:  # not stored in full: only a re-embedding can fix it
            failed[retag.position] = PermanentError(
                f"retag of v{item.version}: the store holds {found} of the {item.chunk_count} points of"
                f" v{retag.previous}; run verify --repair"
            )
        else:
            metrics.retagged_total.labels("index").inc()
    for tenant, doc_id, version in plan.cleanups:
        await retry_transient(store.delete_doc, tenant, doc_id, below_version=version, what="cleanup", attempts=None)
    for tenant, doc_id, version in plan.deletes:
        if await store.has_tenant(tenant):
            await retry_transient(store.delete_doc, tenant, doc_id, upto_version=version, what="delete", attempts=None)
    touched = {key[0] for group in (plan.upserts, plan.reuses) for key in group}
    touched |= {items[r.position].tenant_id for r in plan.retags}
    touched |= {tenant for tenant, _, _ in (*plan.cleanups, *plan.deletes)}
    return failed, touched


async def _upsert(
    store: VectorStore,
    limiter: UpsertLimiter,
    tenant: str,
    version: int,
    repair: bool,
    batch: list[tuple[EmbeddingUpsert, list[float]]],
) -> None:
    """Upsert these points, rate-limited, retrying transient errors for as long as they last."""
    first = batch[0][0]
    try:
        await retry_transient(
            store.ensure_tenant, tenant, first.dim, first.model, what="ensure collection", attempts=None
        )
        for start in range(0, len(batch), limiter.max_batch):
            part = batch[start : start + limiter.max_batch]
            points = [Point(item.chunk_id, vector, payload(item)) for item, vector in part]
            await limiter.acquire(tenant, len(points))
            started = time.perf_counter()
            with stage_tracing.store_write("vectorstore.upsert", tenant, [item for item, _ in part]):
                await retry_transient(
                    store.upsert, tenant, points, version=version, same_version=repair, what="upsert", attempts=None
                )
            metrics.vectorstore_upsert_seconds.observe(time.perf_counter() - started)
            metrics.chunks_indexed_total.labels(tenant).inc(len(points))
    except PermanentError:
        raise
    except Exception as exc:  # retry_transient only gives up on errors is_transient calls permanent
        raise PermanentError(f"vector store refused the write: {type(exc).__name__}: {exc}") from exc


async def _isolating(
    upsert: Callable[[list[int]], Awaitable[None]], items: Sequence[EmbeddingUpsert], positions: list[int]
) -> Failures:
    """Upsert a group; if the store refuses it for good, retry document by document so one bad
    document fails alone."""
    try:
        await upsert(positions)
        return {}
    except PermanentError as exc:
        by_doc: dict[str, list[int]] = {}
        for p in positions:
            by_doc.setdefault(items[p].doc_id, []).append(p)
        if len(by_doc) == 1:
            return dict.fromkeys(positions, exc)
    failures: Failures = {}
    for doc_positions in by_doc.values():
        try:
            await upsert(doc_positions)
        except PermanentError as exc:
            failures.update(dict.fromkeys(doc_positions, exc))
    return failures
