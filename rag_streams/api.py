"""The HTTP API, served by the worker that runs the index stage (it owns the vector store).

Client mistakes get a 4xx JSON error, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag_streams import metrics
from rag_streams.app import app, services, settings
from rag_streams.breaker import BreakerOpen, CircuitBreaker
from rag_streams.cache import answer_key
from rag_streams.errors import BadInput, is_transient
from rag_streams.http_errors import error_body, install_json_errors
from rag_streams.logs import access_log
from rag_streams.openapi import OPENAPI
from rag_streams.records import TENANT_RE, doc_key
from rag_streams.search import SearchRequest, parse_search, search, wait_for_versions
from rag_streams.tables.versions import APPLIED_VERSIONS
from rag_streams.versions import DocState

log = logging.getLogger(__name__)
_KEYS = settings.api_key_tenants()
_BREAKER = CircuitBreaker(
    "vectorstore", failures_to_open=settings.breaker_failures, reset_after_s=settings.breaker_reset_s
)
install_json_errors(app.web)  # aiohttp's own errors (404, 405, 413, malformed HTTP) answer JSON too


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(view: View, status: int, message: str) -> Response:
    """SPEC §7's error body: ``{"error": code, "detail": message}``."""
    return view.bytes(error_body(status, message), status=status, content_type="application/json")


def _check_tenant(request: Request, tenant: str) -> None:
    if not TENANT_RE.fullmatch(tenant):
        raise ApiError(400, "tenant must match [a-z0-9_-]{1,64}")
    if not _KEYS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise ApiError(401, "missing bearer API key")
    owner = _KEYS.get(key.strip())
    if owner is None:
        raise ApiError(401, "unknown API key")
    if owner != tenant:
        raise ApiError(403, "this API key does not belong to the tenant")


async def _json_body(request: Request) -> Any:
    raw = await request.read()
    if len(raw) > 1_000_000:
        raise ApiError(413, "request body over 1 MB")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from exc


@app.page("/v1/tenants/{tenant}/search")
class SearchView(View):
    @access_log(log)
    async def post(self, request: Request, tenant: str) -> Response:
        try:
            _check_tenant(request, tenant)
            req = parse_search(await _json_body(request))
            pending: dict[str, int] = {}
            if req.min_version:  # read-your-writes: wait (bounded) for the versions, then read uncached
                pending = await wait_for_versions(
                    partial(_indexed_versions, tenant), req.min_version, timeout_s=settings.min_version_wait_s
                )
            cache, key = None if req.min_version else services.cache(), answer_key(req.query, req.k, req.doc_ids)
            if cache is not None and (hit := await cache.get(tenant, key)) is not None:
                return _raw_answer(self, hit, cached=True)  # also while the breaker is open
            results = await _BREAKER.call(partial(_search, tenant, req))
        except ApiError as exc:
            return _error(self, exc.status, str(exc))
        except BadInput as exc:
            return _error(self, 400, str(exc))
        except BreakerOpen:
            return _answer(self, [], degraded=True)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("search failed: %r; answered degraded", exc, extra={"tenant": tenant})
            return _answer(self, [], degraded=True)
        encoded = orjson.dumps(results)
        if cache is not None:
            await cache.put(tenant, key, encoded)
        return _raw_answer(self, encoded, cached=False, pending=pending)


async def _indexed_versions(tenant: str, wanted: Mapping[str, int]) -> dict[str, int]:
    """The version indexed per document: the version the tenant's collection holds in full, or a
    delete this worker's index table applied, when it runs the index stage (a copy of a partition it
    no longer owns can be behind, never ahead; the store cannot tell a delete from a document that
    is not indexed yet)."""
    seen: dict[str, int] = {}
    table: Any = app.tables.get(APPLIED_VERSIONS)  # registered only where the index stage runs
    if table is not None:
        for doc_id in wanted:
            state = DocState.from_json(table.get(doc_key(tenant, doc_id)))
            if state is not None and state.deleted:
                seen[doc_id] = state.version
    rest = [doc_id for doc_id, version in wanted.items() if seen.get(doc_id, 0) < version]
    store, timeout_s = services.store(), settings.search_timeout_s
    if not rest or not await asyncio.wait_for(store.has_tenant(tenant), timeout_s):
        return seen
    for doc_id, version in (await asyncio.wait_for(store.doc_versions(tenant, rest), timeout_s)).items():
        seen[doc_id] = max(version, seen.get(doc_id, 0))
    return seen


async def _search(tenant: str, req: SearchRequest) -> list[dict[str, Any]]:
    """The store calls of a search (model lookup, query), each bounded by RAG_SEARCH_TIMEOUT_S."""
    store, timeout_s = services.store(), settings.search_timeout_s
    current = await asyncio.wait_for(store.current_collection(tenant), timeout_s)  # uncached: model = alias's
    if current is None and req.min_version:  # waited for the tenant's first writes: none is indexed
        return []
    if current is None:
        raise ApiError(404, f"tenant {tenant!r} has no collection yet")
    return await search(store, await services.embedder(current.source), tenant, req, timeout_s=timeout_s)


def _answer(view: View, results: list[Any], *, degraded: bool) -> Response:
    body = {"results": results, "cached": False, "degraded": degraded}
    return view.bytes(orjson.dumps(body), content_type="application/json")


def _raw_answer(view: View, results: bytes, *, cached: bool, pending: Mapping[str, int] | None = None) -> Response:
    """An answer from results already encoded (a cache hit is served without decoding it).
    ``pending``: min_version documents not indexed at that version when the wait ran out."""
    body = b'{"results":%b,"cached":%b,"degraded":false' % (results, b"true" if cached else b"false")
    if pending:
        body += b',"pending":%b' % orjson.dumps(pending)
    return view.bytes(body + b"}", content_type="application/json")


@app.page("/v1/tenants/{tenant}/points")
class PointsView(View):
    """Every point of a tenant (ids and payloads, no vectors): audits and tests."""

    @access_log(log, logging.DEBUG)  # audits and tests poll it
    async def get(self, request: Request, tenant: str) -> Response:
        try:
            _check_tenant(request, tenant)
            store = services.store()
            points = await store.points(tenant) if await store.has_tenant(tenant) else []
        except ApiError as exc:
            return _error(self, exc.status, str(exc))
        body = [{"id": p.id, **{k: v for k, v in p.payload.items() if k != "text"}} for p in points]
        return self.bytes(orjson.dumps({"points": body}), content_type="application/json")


@app.page("/healthz")
class HealthView(View):
    async def get(self, request: Request) -> Response:
        return self.bytes(b'{"status":"ok"}', content_type="application/json")


@app.page("/readyz")
class ReadyView(View):
    async def get(self, request: Request) -> Response:
        if app.consumer is None or app.rebalancing is not False:
            why = "no Kafka consumer yet" if app.consumer is None else "a consumer-group rebalance is in progress"
            body = {"ready": False, "error": "service_unavailable", "detail": f"not ready: {why}"}
            return self.bytes(orjson.dumps(body), status=503, content_type="application/json")
        return self.bytes(b'{"ready":true}', content_type="application/json")


@app.page("/openapi.json")
class OpenApiView(View):
    """The OpenAPI 3 document of this API (rag_streams/openapi.py)."""

    async def get(self, request: Request) -> Response:
        return self.bytes(_OPENAPI_JSON, content_type="application/json")


_OPENAPI_JSON = orjson.dumps(OPENAPI)


@app.page("/metrics")
class MetricsView(View):
    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])
