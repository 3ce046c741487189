"""Answering a search: embed the question, query the tenant's collection, shape the results."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from rag_streams import metrics
from rag_streams.embedding import Embedder
from rag_streams.errors import BadInput
from rag_streams.vectorstore import VectorStore

__all__ = ["SearchRequest", "parse_search", "search"]

MAX_QUERY_CHARS = 4096
MAX_K = 100


@dataclass(frozen=True)
class SearchRequest:
    query: str
    k: int = 5
    doc_ids: tuple[str, ...] = ()


def parse_search(body: Any) -> SearchRequest:
    """Validate a search body; BadInput (-> 400) names what is wrong."""
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadInput("'query' must be a non-empty string")
    if len(query) > MAX_QUERY_CHARS:
        raise BadInput(f"'query' is longer than {MAX_QUERY_CHARS} characters")
    k = body.get("k", 5)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise BadInput(f"'k' must be an integer from 1 to {MAX_K}")
    flt = body.get("filter") or {}
    if not isinstance(flt, dict):
        raise BadInput("'filter' must be an object")
    doc_ids = flt.get("doc_id", [])
    doc_ids = [doc_ids] if isinstance(doc_ids, str) else doc_ids
    if not isinstance(doc_ids, list) or not all(isinstance(d, str) for d in doc_ids):
        raise BadInput("'filter.doc_id' must be a string or a list of strings")
    return SearchRequest(query=query, k=k, doc_ids=tuple(doc_ids))


async def search(
    store: VectorStore,
    embedder: Embedder,
    tenant: str,
    req: SearchRequest,
    *,
    timeout_s: float,
) -> list[dict[str, Any]]:
    """Embed the question and query the store, waiting at most ``timeout_s`` (then ``TimeoutError``)."""
    vector = (await asyncio.to_thread(embedder.embed, [req.query]))[0].tolist()
    started = time.perf_counter()

    hits = await asyncio.wait_for(store.search(tenant, vector, req.k, doc_ids=req.doc_ids or None), timeout_s)
    metrics.vectorstore_query_time_seconds.observe(time.perf_counter() - started)
    return [
        {
            "doc_id": h.payload.get("doc_id"),
            "chunk_index": h.payload.get("chunk_index"),
            "version": h.payload.get("version"),
            "score": round(h.score, 6),
            "text": h.payload.get("text"),
            "metadata": h.payload.get("metadata", {}),
        }
        for h in hits
    ]
