"""Index health on the index worker: every ``RAG_HEALTH_INTERVAL_S`` each tenant's stored point count
(``VectorStore.count``, the aliased collection) against the count its version tables expect
(:mod:`rag_streams.rules.index_health`), as the gauges ``rag_index_points`` and ``rag_index_expected_points``;
``GET /v1/tenants/{t}/stats`` (rag_streams.http.stats) asks the same of one tenant on demand.

It runs in a timer, off the message path: the tables are read in slices, giving the event loop back
between them, and a check that meets a rebalance is dropped (the gauges keep the last complete one).
Its errors are logged, never raised: a store hiccup must not stop the worker.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag_streams.errors import is_transient
from rag_streams.observability import metrics
from rag_streams.rules.index_health import ExpectedCounter, TenantCounts, is_sudden_drop, unexplained_drop
from rag_streams.tables.versions import APPLIED_VERSIONS

if TYPE_CHECKING:
    from rag_streams.pipeline.app import Pipeline

__all__ = ["IndexHealth", "Rebalanced", "TenantHealth", "register"]
log = logging.getLogger(__name__)

#: table items read before the event loop gets a turn
SLICE = 2000


class Rebalanced(Exception):
    """The worker's partitions moved during a check: its counts are of no set of partitions."""


@dataclass(frozen=True)
class TenantHealth:
    tenant: str
    points: int  #: in the aliased collection
    counts: TenantCounts  #: from this worker's partitions of the version tables


class IndexHealth:
    """The index worker's health checks (its ``applied-versions`` and ``chunk-slots`` tables)."""

    def __init__(self, p: Pipeline) -> None:
        self.p = p
        self.previous: dict[str, tuple[int, int]] = {}  # tenant -> (points, expected) at the last check

    def partitions(self) -> list[int]:
        """The partitions of the embeddings topic (= of the index tables) this worker holds."""
        actives = self.p.app.assignor.assigned_actives()
        return sorted(tp.partition for tp in actives if tp.topic == self.p.names.embeddings)

    def complete(self) -> bool:
        """Whether this worker holds every partition: its expected counts are the whole tenant's."""
        return len(self.partitions()) == self.p.settings.topic_partitions

    async def expected(self, tenant: str | None = None) -> dict[str, TenantCounts]:
        """Counts per tenant (``tenant``: its only) from this worker's partitions of the tables."""
        app = self.p.app
        if app.rebalancing or getattr(app, "in_recovery", False):
            raise Rebalanced("a rebalance or table recovery is in progress")
        counter = ExpectedCounter(tenant)
        try:
            await _feed(self.p.tables[APPLIED_VERSIONS], counter.doc)
            await _feed(self.p.tables["chunk-slots"], counter.slot)
        except RuntimeError as exc:  # a partition's table store opened or closed under the scan
            raise Rebalanced(str(exc)) from exc
        if app.rebalancing:
            raise Rebalanced("a rebalance started during the check")
        return counter.counts

    async def stored(self, tenant: str) -> int:
        timeout_s = self.p.settings.search_timeout_s
        return await asyncio.wait_for(self.p.services.store().count(tenant), timeout_s)

    async def check(self) -> list[TenantHealth]:
        """Every tenant of this worker's partitions: its stored and expected counts."""
        counts = await self.expected()
        return [TenantHealth(t, await self.stored(t), c) for t, c in sorted(counts.items())]

    def export(self, report: list[TenantHealth]) -> None:
        """Set the gauges (tenants no longer seen lose theirs) and log sudden drops."""
        metrics.index_points.clear()
        metrics.index_expected_points.clear()
        seen: dict[str, tuple[int, int]] = {}
        for row in report:
            now = seen[row.tenant] = (row.points, row.counts.expected_points)
            metrics.index_points.labels(row.tenant).set(row.points)
            metrics.index_expected_points.labels(row.tenant).set(row.counts.expected_points)
            before = self.previous.get(row.tenant)
            if before is not None and is_sudden_drop(*before, *now):
                lost = unexplained_drop(*before, *now)
                extra = {"tenant": row.tenant, "stage": "health"}
                log.warning("index health: %d points lost from the store, not by deletes", lost, extra=extra)
        self.previous = seen

    async def tick(self) -> None:
        """One check; never raises."""
        try:
            self.export(await self.check())
        except Rebalanced as exc:
            log.debug("index health check skipped: %s", exc, extra={"stage": "health"})
        except Exception as exc:  # never stops the worker: the next tick starts afresh
            if is_transient(exc) or isinstance(exc, OSError):  # the store does not answer
                why = f"{type(exc).__name__}: {exc}"
                log.warning("index health check failed: %s", why, extra={"stage": "health"})
            else:  # a bug
                log.exception("index health check failed", extra={"stage": "health"})


async def _feed(table: Any, take: Any) -> None:
    for n, (key, value) in enumerate(table.items(), 1):
        take(key, value)
        if n % SLICE == 0:
            await asyncio.sleep(0)


def register(p: Pipeline) -> IndexHealth:
    """Index health on the index worker (``p`` runs the index stage); its timer unless
    RAG_HEALTH_INTERVAL_S is 0."""
    health = IndexHealth(p)
    if p.settings.health_interval_s > 0:
        p.app.timer(p.settings.health_interval_s, name="index_health")(health.tick)
    return health
