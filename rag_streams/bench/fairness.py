"""The noisy-neighbour scenario: one tenant's updates while another tenant bulk-loads a corpus.

The bulk tenant publishes the whole corpus at once (new documents: every chunk is embedded) through
the bulk lane (``publish --bulk``), or with ``lane="interactive"`` as any other update (the figure
without the lane). While its backlog is embedded, the victim tenant publishes one-chunk updates
one at a time (the idle freshness probe), and the scenario reports their produce -> searchable
latency and its ratio to the idle figure measured earlier in the same run, with how much of the
bulk load was embedded meanwhile (the probes must have run while it was still backlogged).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from rag_streams.bench.corpus import Document
from rag_streams.bench.online import PROBE_TENANT, Online
from rag_streams.bench.stats import percentiles

__all__ = ["BULK_TENANT", "noisy_neighbour"]

BULK_TENANT = "bench-bulk"
EMBEDDED = "rag_tenant_chunks_embedded_total"


async def noisy_neighbour(
    run: Online,
    docs: Sequence[Document],
    chunks: int,
    samples: int,
    idle_p99_s: float,
    *,
    lane: str = "bulk",
    timeout_s: float = 1800,
) -> tuple[dict[str, Any], list[float]]:
    """The scenario's figures and the victim's latencies (seconds)."""
    stack = run.stack
    embedded_before = await stack.metric(EMBEDDED, tenant=BULK_TENANT)
    started = time.perf_counter()
    await asyncio.gather(*(run.producer.upsert(BULK_TENANT, d.doc_id, d.text, bulk=lane == "bulk") for d in docs))
    published_s = time.perf_counter() - started
    latencies = await run.freshness(samples)
    during = await stack.metric(EMBEDDED, tenant=BULK_TENANT) - embedded_before
    probes_s = time.perf_counter() - started
    while (done := await stack.metric(EMBEDDED, tenant=BULK_TENANT) - embedded_before) < chunks:
        stack.check_worker()
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"noisy neighbour: {done:.0f} of {chunks} bulk chunks embedded after {timeout_s} s")
        await asyncio.sleep(0.25)
    bulk_s = time.perf_counter() - started
    victim = percentiles(latencies)
    p99 = float(victim["p99_s"])
    return {
        "lane": lane,
        "victim_tenant": PROBE_TENANT,
        "bulk_tenant": BULK_TENANT,
        "bulk_documents": len(docs),
        "bulk_chunks": chunks,
        "bulk_publish_s": round(published_s, 2),
        "bulk_embedded_during_probes": int(during),
        "bulk_backlogged_throughout": during < chunks,  # the probes ran while the bulk load was still queued
        "probes_s": round(probes_s, 2),
        "bulk_seconds": round(bulk_s, 2),
        "bulk_chunks_per_s": round(chunks / bulk_s, 2),
        "victim": victim,
        "victim_freshness_p99_s": p99,
        "idle_p99_s": idle_p99_s,
        "ratio_to_idle": round(p99 / idle_p99_s, 2) if idle_p99_s > 0 else None,
    }, latencies
