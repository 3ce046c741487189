"""Fallback retrieval: an in-process index of the most-queried chunks, answering while the store is down.

Every successful store search feeds the chunks it returned (their vectors come back with the hits)
into a bounded per-tenant index held by the process that serves the API (the index worker). While
the vector store's circuit breaker is open, or a search fails on a transient store error, the
question is embedded in-process and answered by dot product from that index:
``{"degraded": true, "source": "fallback"}``; with nothing for the tenant the answer stays the empty
``{"degraded": true, "source": "none"}``.

Bounds: ``RAG_FALLBACK_CHUNKS`` chunks over all tenants (default 10,000; 0 = off). When full, the
least-used tenth goes (fewest hits, then least recently hit). Every 10 x capacity hits fed, all
counts are halved, so chunks that stopped being asked for age out (LFU with aging).

Deletes and new versions: the index stage reports every document version it applied
(:meth:`FallbackIndex.written`); the chunks of older versions of that document (of the deleted
version and older for a delete) leave the index at once, and a search that started before a write
to its tenant does not feed its hits. A worker sees the writes of its own partitions: with several
index workers, a document deleted through another worker's partition stays here until it ages out.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rag_streams.adapters.store.base import Hit
from rag_streams.observability import metrics

if TYPE_CHECKING:
    from rag_streams.adapters.services import Services
    from rag_streams.http.search import SearchRequest

__all__ = ["FallbackIndex", "answer"]


@dataclass(slots=True)
class _Entry:
    vector: np.ndarray  # unit length, float32
    result: dict[str, Any]  # a search result without its score
    hits: float
    used: int


@dataclass
class _Tenant:
    source: str | None = None  #: the model source the vectors were made with
    writes: int = 0  #: bumped by every applied write: a search that saw another count does not feed
    entries: dict[str, _Entry] = field(default_factory=dict)  #: by point id
    by_doc: dict[str, set[str]] = field(default_factory=dict)  #: doc_id -> its point ids here
    matrix: tuple[list[str], np.ndarray] | None = None  #: built on the first fallback answer after a change


class FallbackIndex:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._tenants: dict[str, _Tenant] = {}
        self._size = 0
        self._tick = itertools.count()
        self._fed = 0  #: hits fed since the counts were last halved

    def __len__(self) -> int:
        return self._size

    def writes(self, tenant: str) -> int:
        """The tenant's write count, taken before a store search and handed back to :meth:`feed`."""
        t = self._tenants.get(tenant)
        return t.writes if t else 0

    def source(self, tenant: str) -> str | None:
        t = self._tenants.get(tenant)
        return t.source if t else None

    def holds(self, tenant: str) -> bool:
        t = self._tenants.get(tenant)
        return bool(t and t.entries)

    def feed(self, tenant: str, source: str | None, hits: Sequence[Hit], *, writes: int) -> None:
        """Count the hits a store search returned (``writes``: :meth:`writes` before it ran)."""
        t = self._tenants.setdefault(tenant, _Tenant(source=source))
        if t.writes != writes or not hits:
            return
        if t.source != source:  # the tenant's model changed (a reindex): the old vectors are another space
            self._drop(t, list(t.entries))
            t.source = source
        tick = next(self._tick)
        self._fed += len(hits)
        for hit in hits:
            entry = t.entries.get(hit.id)
            if entry is not None and entry.result["version"] == hit.payload.get("version"):
                entry.hits += 1
                entry.used = tick
                continue
            if hit.vector is None:
                continue
            vector = np.asarray(hit.vector, dtype=np.float32)
            norm = float(np.linalg.norm(vector))
            if norm == 0.0:
                continue
            result = {key: hit.payload.get(key) for key in ("doc_id", "chunk_index", "version", "text")}
            result["metadata"] = hit.payload.get("metadata", {})
            if entry is None:
                self._size += 1
            t.entries[hit.id] = _Entry(vector / norm, result, (entry.hits if entry else 0) + 1, tick)
            t.by_doc.setdefault(str(result["doc_id"]), set()).add(hit.id)
            t.matrix = None
        if self._size > self.capacity:
            self._evict()
        if self._fed >= 10 * self.capacity:
            self._fed = 0
            for each in self._tenants.values():
                for e in each.entries.values():
                    e.hits /= 2
        metrics.fallback_chunks.set(self._size)

    def written(self, writes: Iterable[tuple[str, str, int, bool]]) -> None:
        """Writes the index stage applied: (tenant, doc_id, version, is_delete). Older versions of
        those documents leave the index (the deleted version too)."""
        for tenant, doc_id, version, deleted in writes:
            t = self._tenants.setdefault(tenant, _Tenant())
            t.writes += 1
            held = t.by_doc.get(doc_id, ())
            self._drop(t, [pid for pid in held if t.entries[pid].result["version"] < version + deleted])
        metrics.fallback_chunks.set(self._size)

    def search(self, tenant: str, vector: Sequence[float], k: int, doc_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The top ``k`` chunks of the tenant by cosine similarity (``doc_ids``: only those documents)."""
        t = self._tenants.get(tenant)
        if t is None or not t.entries:
            return []
        if t.matrix is None:
            ids = list(t.entries)
            t.matrix = (ids, np.stack([t.entries[pid].vector for pid in ids]))
        ids, matrix = t.matrix
        query = np.asarray(vector, dtype=np.float32)
        scores = matrix @ (query / max(float(np.linalg.norm(query)), 1e-12))
        if doc_ids:
            wanted = set(doc_ids)
            scores = np.where([t.entries[pid].result["doc_id"] in wanted for pid in ids], scores, -np.inf)
        top = np.argsort(-scores, kind="stable")[:k]
        return [
            {**t.entries[ids[i]].result, "score": round(float(scores[i]), 6)} for i in top if np.isfinite(scores[i])
        ]

    def _drop(self, t: _Tenant, ids: Iterable[str]) -> None:
        for pid in ids:
            entry = t.entries.pop(pid, None)
            if entry is not None:
                self._size -= 1
                t.matrix = None
                doc = t.by_doc.get(str(entry.result["doc_id"]), set())
                doc.discard(pid)
                if not doc:
                    t.by_doc.pop(str(entry.result["doc_id"]), None)

    def _evict(self) -> None:
        """Down to 90% of the capacity: the fewest hits first, then the least recently hit."""
        keep = self.capacity - max(1, self.capacity // 10)
        everything = (
            (e.hits, e.used, tenant, pid) for tenant, t in self._tenants.items() for pid, e in t.entries.items()
        )
        for _, _, tenant, pid in heapq.nsmallest(max(0, self._size - keep), everything):
            self._drop(self._tenants[tenant], [pid])


async def answer(
    index: FallbackIndex | None, services: Services, tenant: str, req: SearchRequest
) -> tuple[list[dict[str, Any]], str]:
    """The degraded answer: (results, source) with source ``fallback`` (results from the index) or
    ``none`` (nothing for this question: fallback off, or no chunk of the tenant, or of its filter)."""
    results: list[dict[str, Any]] = []
    if index is not None and index.holds(tenant):
        embedder = await services.embedder(index.source(tenant))
        vector = (await asyncio.to_thread(embedder.embed, [req.query]))[0]
        results = index.search(tenant, vector.tolist(), req.k, req.doc_ids)
    metrics.fallback_answers_total.labels("hit" if results else "empty").inc()
    return results, "fallback" if results else "none"
