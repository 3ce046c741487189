"""The measurements that need no Kafka: the model's ceiling, a naive loop, the store at size."""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_streams.adapters.embedding import SentenceTransformerEmbedder
from rag_streams.adapters.store.base import Point, VectorStore
from rag_streams.adapters.store.edge import EdgeVectorStore
from rag_streams.bench.corpus import Document
from rag_streams.bench.stats import percentiles
from rag_streams.bench.vectors import Clustered, exact_top_k, recall_at_k
from rag_streams.rules.chunking import chunk_document
from rag_streams.rules.indexing import payload
from rag_streams.rules.records import Chunk, EmbeddingUpsert, RawDocument
from rag_streams.settings import Settings

__all__ = ["ceiling", "chunk_corpus", "memory_short_mb", "naive_loop", "store_at_size"]

TENANT = "bench"


def raw(doc: Document, tenant: str = TENANT, version: int = 1) -> RawDocument:
    return RawDocument(tenant_id=tenant, doc_id=doc.doc_id, version=version, text=doc.text)


def chunk_corpus(
    docs: Sequence[Document], embedder: SentenceTransformerEmbedder, settings: Settings, target: int | None
) -> tuple[list[Document], list[Chunk]]:
    """The documents (in order, until ``target`` chunks are reached) and their chunks, cut exactly
    as the chunk stage cuts them."""
    kept: list[Document] = []
    chunks: list[Chunk] = []
    for doc in docs:
        if target is not None and len(chunks) >= target:
            break
        kept.append(doc)
        chunks += chunk_document(raw(doc), embedder, size=settings.chunk_tokens, overlap=settings.chunk_overlap)
    return kept, chunks


def ceiling(embedder: SentenceTransformerEmbedder, texts: Sequence[str], batch: int) -> dict[str, Any]:
    """Bare ``encode`` throughput on the corpus's own chunks, one call per batch of the worker's size."""
    embedder.embed(list(texts[:batch]))  # warm up (first call allocates)
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), batch):
        embedder.embed(list(texts[start : start + batch]))
    elapsed = time.perf_counter() - started
    return {
        "chunks": len(texts),
        "batch": batch,
        "seconds": round(elapsed, 2),
        "chunks_per_s": len(texts) / elapsed,
        "cpu_s": round(time.process_time() - cpu, 2),  # the model's own CPU for the corpus (all its threads)
    }


async def naive_loop(
    docs: Sequence[Document], embedder: SentenceTransformerEmbedder, settings: Settings
) -> dict[str, Any]:
    """chunk -> embed -> upsert, document by document, in one process into the embedded store."""
    folder = tempfile.mkdtemp(prefix="rag-bench-naive-")
    store = EdgeVectorStore.open(folder)
    try:
        await store.ensure_tenant(TENANT, embedder.dim, embedder.model_name)
        count = 0
        started = time.perf_counter()
        for doc in docs:
            chunks = chunk_document(raw(doc), embedder, size=settings.chunk_tokens, overlap=settings.chunk_overlap)
            vectors = embedder.embed([c.text for c in chunks])
            points = [
                Point(c.chunk_id, v.tolist(), _payload(c, embedder.model_name))
                for c, v in zip(chunks, vectors, strict=True)
            ]
            await store.upsert(TENANT, points, version=1)
            count += len(points)
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {"chunks": count, "seconds": round(elapsed, 2), "chunks_per_s": count / elapsed}


def _payload(c: Chunk, model: str) -> dict[str, Any]:
    """The payload the index stage writes (one builder: ``indexing.payload``)."""
    return payload(EmbeddingUpsert.of(c, b"", model, 0))


def memory_short_mb(size: int, dim: int = 384, meminfo: str = "/proc/meminfo") -> int:
    """MiB the store scenario at ``size`` points lacks (0: enough), against MemAvailable (0 where that
    cannot be read). Measured at 1M x 384 int8: the bench process 4.7 GiB (its float32 copy for exact
    search and the live store), the index build's child 8.0 GiB; so 8x the float32 vectors + 1 KiB a point."""
    try:
        lines = Path(meminfo).read_text().splitlines()
        available_kb = next(int(ln.split()[1]) for ln in lines if ln.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return 0
    need_mb = (size * dim * 4 * 8 + size * 1024) // 2**20
    return max(0, need_mb - available_kb // 1024)


async def _timed(samples: list[float], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    out = await fn(*args, **kwargs)
    samples.append(time.perf_counter() - started)
    return out


async def store_at_size(
    size: int,
    *,
    queries: int,
    updates: int,
    dim: int = 384,
    chunks_per_doc: int = 10,
    quantization: str = "none",
    recall_queries: int = 100,
    make_store: Callable[[str], VectorStore] | None = None,
) -> dict[str, Any]:
    """Load ``size`` synthetic points (clustered unit vectors, ``vectors.Clustered``; the real payload
    shape) straight into a fresh embedded store, build its HNSW index once, then measure recall@10
    against brute-force exact search, time searches (plain and filtered by doc_id), per-document
    updates (upsert of the next version + cleanup of the old one) and the read-your-writes check."""
    rng = np.random.default_rng(size)
    mixture = Clustered(rng, dim)
    folder = tempfile.mkdtemp(prefix=f"rag-bench-store-{size}-")
    if make_store:
        store = make_store(folder)
    else:  # one index build, after the load: its time is the build of all the points
        store = EdgeVectorStore.open(folder, index_threshold=size + 1, quantization=quantization)
    docs = size // chunks_per_doc
    stored = np.empty((docs * chunks_per_doc, dim), dtype=np.float32)

    def pid(row: int) -> str:
        return f"00000000-0000-4000-8000-{row:012d}"

    def points(doc: int, version: int) -> list[Point]:
        vecs = mixture.sample(chunks_per_doc)
        if version == 1:
            stored[doc * chunks_per_doc : (doc + 1) * chunks_per_doc] = vecs
        return [
            Point(
                pid(doc * chunks_per_doc + i),
                vecs[i].tolist(),
                {
                    "tenant_id": TENANT,
                    "doc_id": f"doc-{doc}",
                    "chunk_index": i,
                    "chunk_count": chunks_per_doc,
                    "version": version,
                    "text": f"synthetic chunk {i} of document {doc}",
                    "content_hash": f"{doc}-{i}-{version}",
                    "model": "synthetic",
                    "metadata": {},
                },
            )
            for i in range(chunks_per_doc)
        ]

    try:
        await store.ensure_tenant(TENANT, dim, "synthetic")
        started = time.perf_counter()
        per_call = max(1, 1000 // chunks_per_doc)
        for first in range(0, docs, per_call):
            batch = [p for d in range(first, min(docs, first + per_call)) for p in points(d, 1)]
            await store.upsert(TENANT, batch, version=1)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        build_indexes = getattr(store, "build_indexes", None)
        if build_indexes is not None:  # Edge: wait for the HNSW build (child process)
            await build_indexes()
        index_s = time.perf_counter() - started
        asked = mixture.sample(recall_queries)
        exact = [[pid(row) for row in rows] for rows in exact_top_k(stored, asked, 10)]
        found = [[h.id for h in await store.search(TENANT, q.tolist(), 10)] for q in asked]
        pick = random.Random(size)
        plain: list[float] = []
        filtered: list[float] = []
        for vec in mixture.sample(queries):
            await _timed(plain, store.search, TENANT, vec.tolist(), 5)
            await _timed(filtered, store.search, TENANT, vec.tolist(), 5, doc_ids=[f"doc-{pick.randrange(docs)}"])
        upserts: list[float] = []
        cleanups: list[float] = []
        checks: list[float] = []
        for n, doc in enumerate(pick.sample(range(docs), updates)):
            new = points(doc, 2 + n)
            await _timed(upserts, store.upsert, TENANT, new, version=2 + n)
            await _timed(cleanups, store.delete_doc, TENANT, f"doc-{doc}", below_version=2 + n)
            await _timed(checks, store.doc_versions, TENANT, [f"doc-{doc}"])
    finally:
        await store.close()
        shutil.rmtree(folder, ignore_errors=True)
    query = percentiles(plain, 1000, "ms")
    return {
        "points": docs * chunks_per_doc,
        "quantization": quantization,
        "vectors": "clustered (1000 clusters, 32-dim latent, random projection to 384)",
        "load_s": round(load_s, 2),
        "load_points_per_s": round(docs * chunks_per_doc / load_s, 1),
        "index_build_s": round(index_s, 2),
        "recall_at_10": round(recall_at_k(found, exact, 10), 4),
        "recall_queries": recall_queries,
        "query_ms": query,
        "query_p99_ms": query.get("p99_ms"),
        "filtered_query_ms": percentiles(filtered, 1000, "ms"),
        "update_upsert_ms": percentiles(upserts, 1000, "ms"),
        "cleanup_ms": percentiles(cleanups, 1000, "ms"),
        "doc_versions_ms": percentiles(checks, 1000, "ms"),
    }
