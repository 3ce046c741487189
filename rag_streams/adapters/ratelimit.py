"""Token buckets (aiolimiter) in front of vector store upserts: one global, one per tenant."""

from __future__ import annotations

from aiolimiter import AsyncLimiter

__all__ = ["UpsertLimiter"]


class UpsertLimiter:
    def __init__(self, rate: float, tenant_rate: float) -> None:
        self._global = AsyncLimiter(rate, 1.0)
        self._tenant_rate = tenant_rate
        self._tenants: dict[str, AsyncLimiter] = {}
        self.max_batch = max(1, int(min(rate, tenant_rate)))  # largest amount one acquire may ask

    async def acquire(self, tenant: str, points: int) -> None:
        """Wait until ``points`` upserts fit both buckets (``points`` <= ``max_batch``)."""
        bucket = self._tenants.get(tenant)
        if bucket is None:
            bucket = self._tenants[tenant] = AsyncLimiter(self._tenant_rate, 1.0)
        await bucket.acquire(points)
        await self._global.acquire(points)
