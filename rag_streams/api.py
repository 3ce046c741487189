"""The HTTP API, served by the worker that runs the index stage (it owns the vector store).

Client mistakes get a 4xx JSON error, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
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
from rag_streams.logs import access_log
from rag_streams.records import TENANT_RE
from rag_streams.search import SearchRequest, parse_search, search

log = logging.getLogger(__name__)
_KEYS = settings.api_key_tenants()
_BREAKER = CircuitBreaker(
    "vectorstore", failures_to_open=settings.breaker_failures, reset_after_s=settings.breaker_reset_s
)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(view: View, status: int, message: str) -> Response:
    return view.bytes(
        orjson.dumps({"error": message, "status": status}), status=status, content_type="application/json"
    )


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
            cache, key = services.cache(), answer_key(req.query, req.k, req.doc_ids)
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
        return _raw_answer(self, encoded, cached=False)


async def _search(tenant: str, req: SearchRequest) -> list[dict[str, Any]]:
    """The store calls of a search (model lookup, query), each bounded by RAG_SEARCH_TIMEOUT_S."""
    store, timeout_s = services.store(), settings.search_timeout_s
    current = await asyncio.wait_for(store.current_collection(tenant), timeout_s)  # uncached: model = alias's
    if current is None:
        raise ApiError(404, f"tenant {tenant!r} has no collection yet")
    return await search(store, await services.embedder(current.source), tenant, req, timeout_s=timeout_s)


def _answer(view: View, results: list[Any], *, degraded: bool) -> Response:
    body = {"results": results, "cached": False, "degraded": degraded}
    return view.bytes(orjson.dumps(body), content_type="application/json")


def _raw_answer(view: View, results: bytes, *, cached: bool) -> Response:
    """An answer from results already encoded (a cache hit is served without decoding it)."""
    body = b'{"results":%b,"cached":%b,"degraded":false}' % (results, b"true" if cached else b"false")
    return view.bytes(body, content_type="application/json")


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
        ready = app.rebalancing is False and app.consumer is not None
        return self.bytes(orjson.dumps({"ready": ready}), status=200 if ready else 503, content_type="application/json")


@app.page("/metrics")
class MetricsView(View):
    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])
