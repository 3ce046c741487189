"""The measurements on the real pipeline: ingest, freshness, re-ingest and HTTP queries."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

from rag_streams.adapters.producer import DocumentProducer
from rag_streams.bench.corpus import Document
from rag_streams.bench.stack import Stack, metric_sum
from rag_streams.bench.stats import CpuMeter, percentiles

__all__ = ["Online", "poll_interval"]

TENANT, PROBE_TENANT, LOAD_TENANT = "bench", "bench-fresh", "bench-load"
POLL_S = 0.02  # how often "searchable?" is asked: the resolution of the freshness figures
INDEXED = "rag_messages_processed_total"
#: what an ingest reads of the worker's counters: key -> (sample name, labels its samples must have)
COUNTERS: dict[str, tuple[str, dict[str, str]]] = {
    "indexed": (INDEXED, {"stage": "index"}),
    "retagged": ("rag_retagged_total", {"stage": "index"}),
    "skipped": ("rag_embed_skipped_unchanged_total", {}),
    "model_s": ("rag_embed_model_seconds_total", {}),
}


def poll_interval(elapsed: float, done: float, total: float) -> float:
    """Seconds to an ingest's next poll: 2% of the time elapsed (20 to 250 ms), and at most a quarter
    of what the rest should take at the rate so far, so that the end is seen within about 20 ms
    (a 250 ms poll added 125 ms on average to a 20 s ingest's time: 0.6% of its rate)."""
    if done >= total:
        return 0.02
    interval = min(0.25, elapsed / 50)
    if done > 0:
        interval = min(interval, (total - done) * elapsed / done / 4)
    return max(0.02, interval)


class Online:
    def __init__(self, stack: Stack, producer: DocumentProducer, timeout_s: float = 1800) -> None:
        self.stack, self.producer, self.timeout_s = stack, producer, timeout_s
        self.rng = random.Random(7)

    async def _indexed(self) -> float:
        return (await self._counters())["indexed"]

    async def _counters(self) -> dict[str, float]:
        """The worker's counters an ingest reads, from one /metrics scrape (each costs its event loop)."""
        text = await self.stack.metrics_text(*(name for name, _ in COUNTERS.values()))
        return {key: metric_sum(text, name, **labels) for key, (name, labels) in COUNTERS.items()}

    async def publish_all(self, tenant: str, docs: Sequence[Document]) -> dict[str, int]:
        """Publish every document (concurrently: the producer batches them); doc_id -> version."""
        versions: dict[str, int] = {}

        async def one(doc: Document) -> None:
            versions[doc.doc_id] = await self.producer.upsert(tenant, doc.doc_id, doc.text)

        for start in range(0, len(docs), 200):
            await asyncio.gather(*(one(d) for d in docs[start : start + 200]))
        return versions

    async def stored_versions(self, tenant: str) -> tuple[int, dict[str, set[int]]]:
        status, body = await self.stack.api("GET", f"/v1/tenants/{tenant}/points")
        if status != 200:
            return 0, {}
        versions: dict[str, set[int]] = {}
        for p in body["points"]:
            versions.setdefault(p["doc_id"], set()).add(p["version"])
        return len(body["points"]), versions

    async def ingest(self, docs: Sequence[Document], chunks: int, tenant: str = TENANT) -> dict[str, Any]:
        """Publish ``docs`` (``chunks`` chunks in all) and wait until the tenant's store holds exactly
        them: every document at its new version and nothing else, ``chunks`` points in all.

        Each chunk the index stage handles is an event, except an unchanged document's retag (one
        event for the document, ``rag_retagged_total``): so the store is read once the index stage
        has handled ``chunks`` events, or, when retags were indexed, as many as the documents.
        Polled every 2% of the time elapsed (20 to 250 ms), faster near the end (:func:`poll_interval`),
        one /metrics scrape of its counters a poll: each costs the worker's event loop, as does reading
        the points."""
        before = await self._counters()
        cpu = CpuMeter(self.stack.pids(), split=("worker",))
        started = time.perf_counter()
        versions = await self.publish_all(tenant, docs)
        published = time.perf_counter() - started
        series: list[tuple[float, float]] = []
        first_indexed: float | None = None
        count, stored = 0, dict[str, set[int]]()
        while True:
            self.stack.check_worker()
            now_counters = await self._counters()
            done, retagged = (now_counters[k] - before[k] for k in ("indexed", "retagged"))
            now = time.perf_counter() - started
            series.append((round(now, 3), done))
            if done and first_indexed is None:
                first_indexed = now
            if done >= chunks or (retagged and done >= len(docs)):
                count, stored = await self.stored_versions(tenant)
                if count == chunks and all(stored.get(d) == {v} for d, v in versions.items()):
                    break
            if now > self.timeout_s:
                wrong = [d for d, v in versions.items() if stored.get(d) != {v}]
                raise RuntimeError(
                    f"ingest: {done:.0f} index events for {chunks} chunks after {now:.0f} s; {count} points"
                    f" stored, {len(wrong)} documents not (only) at their new version, e.g. {wrong[:3]}"
                )
            await asyncio.sleep(poll_interval(now, done, len(docs) if retagged else chunks))
        now = time.perf_counter() - started
        elapsed = now
        cpu_used = cpu.result()
        after = await self._counters()
        model_s = after["model_s"] - before["model_s"]
        steady = elapsed - (first_indexed or 0.0)
        return {
            "documents": len(docs),
            "chunks": chunks,
            "points_stored": count,
            "seconds": round(elapsed, 2),
            "publish_s": round(published, 2),
            "chunks_per_s": chunks / elapsed,
            "first_indexed_s": round(first_indexed or 0.0, 2),
            "steady_chunks_per_s": chunks / steady if steady > 0 else None,
            "model_busy_s": round(model_s, 2),
            "model_busy_fraction": round(model_s / elapsed, 3),
            "embed_skipped": after["skipped"] - before["skipped"],
            "documents_retagged": after["retagged"] - before["retagged"],
            "cpu": cpu_used,  # where the cores' time went: worker, broker, cache, this process
            "series": series,
        }

    async def _probe(self, n: int) -> float:
        """Publish a new one-chunk version of the probe document; seconds until it is searchable
        (the worker's HTTP API shows the tenant's point at that version)."""
        text = f"Freshness probe {n}: " + " ".join(self.rng.choice(_WORDS) for _ in range(12)) + "."
        started = time.perf_counter()
        version = await self.producer.upsert(PROBE_TENANT, "probe", text)
        while True:
            _, stored = await self.stored_versions(PROBE_TENANT)
            if version in stored.get("probe", set()):
                return time.perf_counter() - started
            if time.perf_counter() - started > 120:
                raise RuntimeError("freshness: a probe was not searchable within 120 s")
            await asyncio.sleep(POLL_S)

    async def freshness(self, samples: int) -> list[float]:
        """Probes one at a time, at random phases (not in step with the commit timer)."""
        out = []
        for n in range(samples):
            await asyncio.sleep(self.rng.uniform(0.1, 0.5))
            out.append(await self._probe(n))
        return out

    async def freshness_loaded(
        self, samples: int, docs: Sequence[Document], doc_chunks: Sequence[int], rate: float
    ) -> dict[str, Any]:
        """Freshness probes while new documents (all their chunks to embed) arrive at ``rate`` chunks/s.
        Returns once the load is indexed too: what the next scenario measures must not queue behind it."""
        stop = asyncio.Event()
        sent = {"docs": 0, "chunks": 0}
        versions: dict[str, int] = {}

        async def load() -> None:
            started, due, n = time.perf_counter(), 0.0, 0
            while not stop.is_set():
                doc, count = docs[n % len(docs)], doc_chunks[n % len(docs)]
                wait = started + due - time.perf_counter()
                if wait > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), wait)
                        return
                    except asyncio.TimeoutError:
                        pass
                doc_id = f"r{n // len(docs)}/{doc.doc_id}"
                versions[doc_id] = await self.producer.upsert(LOAD_TENANT, doc_id, doc.text)
                sent["docs"] += 1
                sent["chunks"] += count
                due += count / rate
                n += 1

        before = await self._indexed()
        loader = asyncio.create_task(load())
        await asyncio.sleep(3.0)  # let the load settle in
        started = time.perf_counter()
        probes = await self.freshness(samples)
        duration = time.perf_counter() - started + 3.0
        stop.set()
        await loader
        handled = await self._indexed() - before
        drained = time.perf_counter()
        while True:  # the load's backlog (its large documents in the bulk lane: RAG_BULK_MIN_CHUNKS)
            self.stack.check_worker()
            _, stored = await self.stored_versions(LOAD_TENANT)
            if all(v in stored.get(d, set()) for d, v in versions.items()):
                break
            if time.perf_counter() - drained > self.timeout_s:
                raise RuntimeError("freshness at load: the load was not indexed")
            await asyncio.sleep(0.25)
        return {
            "drained_after_probes_s": round(time.perf_counter() - drained, 2),
            "latencies": probes,
            "rate_chunks_per_s": round(rate, 2),
            "offered_chunks": sent["chunks"],
            "indexed_during_s": round(duration, 1),
            "index_events": handled,
        }

    async def queries(self, questions: Sequence[str]) -> dict[str, Any]:
        """Each question through the HTTP API twice: cold (a cache miss), then cached."""
        cold: list[float] = []
        cached: list[float] = []
        hits = 0
        for rounds, samples in ((1, cold), (2, cached)):
            for q in questions:
                started = time.perf_counter()
                status, body = await self.stack.api("POST", f"/v1/tenants/{TENANT}/search", {"query": q, "k": 5})
                samples.append(time.perf_counter() - started)
                if status != 200 or not body.get("results"):
                    raise RuntimeError(f"query: {status} {str(body)[:200]}")
                hits += rounds == 2 and bool(body.get("cached"))
        return {
            "questions": len(questions),
            "cold": percentiles(cold, 1000, "ms"),
            "cached": percentiles(cached, 1000, "ms"),
            "cache_hits": hits,
            "cache": "redis" if self.stack.redis is not None else "none (redis-server not installed)",
        }


_WORDS = [
    "kafka",
    "stream",
    "partition",
    "offset",
    "transaction",
    "vector",
    "index",
    "qdrant",
    "chunk",
    "token",
    "embedding",
    "model",
    "tenant",
    "version",
    "replay",
    "compaction",
    "latency",
    "throughput",
    "batch",
    "window",
    "commit",
    "consumer",
    "producer",
    "search",
    "cache",
    "breaker",
    "shard",
    "segment",
    "payload",
    "filter",
    "alias",
    "recall",
]
