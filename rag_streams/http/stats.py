"""``GET /v1/tenants/{tenant}/stats`` on the index worker: the tenant's index health now.

The stored point count of the aliased collection against the count the index stage's version tables
expect (rag_streams.rules.index_health), the documents, and the collection's model. ``expected_points``
covers this worker's partitions (``partitions``); ``complete`` says whether those are all of them
(one index worker, the default), and only then is ``mismatch`` (points - expected) the tenant's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response

from rag_streams.http.api import Api, ApiError, ApiView
from rag_streams.observability.index_health import Rebalanced
from rag_streams.rules.index_health import TenantCounts

if TYPE_CHECKING:
    from rag_streams.observability.index_health import IndexHealth

__all__ = ["register", "tenant_stats"]
log = logging.getLogger(__name__)


async def tenant_stats(health: IndexHealth, tenant: str) -> dict[str, Any] | None:
    """The stats body; None when neither the store nor this worker's tables know the tenant."""
    counts = (await health.expected(tenant)).get(tenant)
    store, timeout_s = health.p.services.store(), health.p.settings.search_timeout_s
    current = await asyncio.wait_for(store.current_collection(tenant), timeout_s)
    if counts is None and current is None:
        return None
    counts = counts or TenantCounts()
    points = await health.stored(tenant) if current is not None else 0
    partitions, complete = health.partitions(), health.complete()
    return {
        "tenant": tenant,
        "points": points,
        "expected_points": counts.expected_points,
        "mismatch": points - counts.expected_points if complete else None,
        "documents": counts.documents,
        "deleted_documents": counts.deleted_documents,
        "collection": current and current.name,
        "generation": current and current.generation,
        "model": current and current.model,
        "dim": current and current.dim,
        "partitions": partitions,
        "complete": complete,
    }


class StatsView(ApiView):
    health: IndexHealth  # set by register

    async def get(self, request: Request, tenant: str) -> Response:
        async def run() -> dict[str, Any] | None:
            try:
                body = await tenant_stats(self.health, tenant)
            except Rebalanced as exc:
                raise ApiError(503, f"partitions are moving; ask again shortly ({exc})") from exc
            if body is None:
                raise ApiError(404, f"tenant {tenant!r} has no collection and no indexed document here")
            return body

        return await self.respond(request, tenant, run, unavailable="the vector store is unavailable")


def register(api: Api, health: IndexHealth) -> None:
    """The stats route on the API's app (the index worker: it holds the version tables)."""
    api.route("/v1/tenants/{tenant}/stats", type("StatsView", (StatsView,), {"health": health}))
