"""Answering a search: embed the question, query the tenant's collection, shape the results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag_streams.adapters.embedding import Embedder
from rag_streams.adapters.store.base import Hit, VectorStore
from rag_streams.errors import BadInput, is_transient
from rag_streams.observability import metrics, tracing
from rag_streams.rules.records import MAX_VERSION, check_doc_id

__all__ = ["SearchRequest", "parse_search", "search", "wait_for_versions"]

MAX_QUERY_CHARS = 4096
MAX_K = 100
MAX_MIN_VERSION_DOCS = 100
MAX_FILTER_DOC_IDS = 1000
#: The filter language (docs/http-api.md): each key narrows the search; the only one is
#: ``doc_id``: a doc_id or a list of them, the chunks of those documents only.
FILTER_KEYS = ("doc_id",)


@dataclass(frozen=True)
class SearchRequest:
    query: str
    k: int = 5
    doc_ids: tuple[str, ...] = ()
    #: read-your-writes: doc_id -> the version the answer must reflect (waited for, bounded)
    min_version: Mapping[str, int] = field(default_factory=dict)


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
    doc_ids = _filter_doc_ids(body.get("filter"))
    return SearchRequest(query=query, k=k, doc_ids=doc_ids, min_version=_min_version(body.get("min_version")))


def _filter_doc_ids(flt: Any) -> tuple[str, ...]:
    """``filter``: absent, null or an object with only known keys (an unknown one is a 400 naming
    it, not silently ignored). ``filter.doc_id``: a doc_id or a non-empty list of doc_ids."""
    if flt is None:
        return ()
    if not isinstance(flt, dict):
        raise BadInput("'filter' must be an object")
    unknown = sorted(set(flt) - set(FILTER_KEYS))
    if unknown:
        raise BadInput(f"unknown filter key {unknown[0][:80]!r}: the filter keys are {', '.join(FILTER_KEYS)}")
    doc_ids = flt.get("doc_id", [])
    doc_ids = [doc_ids] if isinstance(doc_ids, str) else doc_ids
    if (
        not isinstance(doc_ids, list)
        or not all(isinstance(d, str) for d in doc_ids)
        or len(doc_ids) > MAX_FILTER_DOC_IDS
    ):
        raise BadInput(f"'filter.doc_id' must be a doc_id or a list of at most {MAX_FILTER_DOC_IDS} doc_ids")
    if "doc_id" in flt and not doc_ids:
        raise BadInput("'filter.doc_id' must not be an empty list (it would match nothing)")
    for doc_id in doc_ids:
        _check_doc_id(doc_id, "filter.doc_id")
    return tuple(doc_ids)


def _check_doc_id(doc_id: str, where: str) -> None:
    try:
        check_doc_id(doc_id)
    except BadInput as exc:
        raise BadInput(f"'{where}': {exc}") from None


def _min_version(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_MIN_VERSION_DOCS:
        raise BadInput(f"'min_version' must be an object of at most {MAX_MIN_VERSION_DOCS} doc_id: version pairs")
    for doc_id, version in value.items():
        _check_doc_id(doc_id, "min_version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_VERSION:
            raise BadInput(f"'min_version.{doc_id[:80]}' must be an integer version from 1 to 2^63-1")
    return dict(value)


async def wait_for_versions(
    indexed: Callable[[Mapping[str, int]], Awaitable[Mapping[str, int]]],
    wanted: Mapping[str, int],
    *,
    timeout_s: float,
    poll_s: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> dict[str, int]:
    """Wait until ``indexed`` reports each wanted document at its version or later, at most
    ``timeout_s``. Returns what is still pending (doc_id -> newest version seen, 0 for none): empty
    when every version is indexed. ``indexed`` gets the pending documents; a transient failure of it
    counts as "not yet". The poll interval doubles up to 0.2 s (an update is searchable in about
    0.3 s on an idle pipeline: a longer step would make the answer wait past it)."""
    deadline, pending = clock() + timeout_s, dict.fromkeys(wanted, 0)
    while True:
        try:
            seen = await indexed({d: wanted[d] for d in pending})
        except Exception as exc:
            if not is_transient(exc):
                raise
            seen = {}
        pending = {d: seen.get(d, 0) for d in pending if seen.get(d, 0) < wanted[d]}
        if not pending or clock() >= deadline:
            return pending
        await sleep(min(poll_s, max(0.0, deadline - clock())))
        poll_s = min(poll_s * 2, 0.2)


async def search(
    store: VectorStore,
    embedder: Embedder,
    tenant: str,
    req: SearchRequest,
    *,
    timeout_s: float,
    feed: Callable[[Sequence[Hit]], None] | None = None,
) -> list[dict[str, Any]]:
    """Embed the question and query the store, waiting at most ``timeout_s`` (then ``TimeoutError``).
    ``feed`` gets the store's hits (the fallback index counts them)."""
    with tracing.span("search.embed", {"rag.model": embedder.model_name}):
        vector = (await asyncio.to_thread(embedder.embed, [req.query]))[0].tolist()
    started = time.perf_counter()
    with tracing.span("vectorstore.search", {"rag.tenant": tenant, "rag.k": req.k}, kind=tracing.CLIENT):
        hits = await asyncio.wait_for(store.search(tenant, vector, req.k, doc_ids=req.doc_ids or None), timeout_s)
        tracing.set_attributes({"rag.hits": len(hits)})
    metrics.vectorstore_query_time_seconds.observe(time.perf_counter() - started)
    if feed is not None:
        feed(hits)
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
