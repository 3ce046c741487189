"""The HTTP API, served by the worker that runs the index stage (it owns the vector store).

Client mistakes get a 4xx JSON error, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from aiokafka.errors import KafkaError
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag_streams.adapters.breaker import BreakerOpen, CircuitBreaker
from rag_streams.adapters.cache import answer_key
from rag_streams.errors import BadInput, is_transient
from rag_streams.http import fallback
from rag_streams.http.errors import error_body, install_json_errors
from rag_streams.http.openapi import OPENAPI
from rag_streams.http.search import SearchRequest, parse_search, search, wait_for_versions
from rag_streams.observability import metrics, tracing
from rag_streams.observability.logs import access_log
from rag_streams.rules.records import TENANT_RE, doc_key
from rag_streams.rules.versions import DocState
from rag_streams.tables.versions import APPLIED_VERSIONS

if TYPE_CHECKING:
    from rag_streams.pipeline.app import Pipeline

log = logging.getLogger(__name__)
__all__ = ["Api", "ApiError", "ApiView", "register"]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Api:
    """What the worker's HTTP views share: its pipeline (settings, services, app), the API keys
    and the vector store's circuit breaker."""

    def __init__(self, p: Pipeline) -> None:
        self.pipeline, self.app, self.settings, self.services = p, p.app, p.settings, p.services
        self.keys = p.settings.api_key_tenants()
        self.breaker = CircuitBreaker(
            "vectorstore", failures_to_open=p.settings.breaker_failures, reset_after_s=p.settings.breaker_reset_s
        )
        #: fed by searches, answers while the store is down; only where the index stage runs (it
        #: drops superseded versions: rag_streams/http/fallback.py)
        self.fallback = p.services.fallback() if "index" in p.roles else None

    def check_tenant(self, request: Request, tenant: str) -> None:
        if not TENANT_RE.fullmatch(tenant):
            raise ApiError(400, "tenant must match [a-z0-9_-]{1,64}")
        if not self.keys:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise ApiError(401, "missing bearer API key")
        owner = self.keys.get(key.strip())
        if owner is None:
            raise ApiError(401, "unknown API key")
        if owner != tenant:
            raise ApiError(403, "this API key does not belong to the tenant")

    def route(self, path: str, view: type[ApiView]) -> None:
        """Serve ``view`` at ``path`` on the worker's app, bound to this API."""
        self.app.page(path)(type(view.__name__, (view,), {"api": self}))


class ApiView(View):
    api: ClassVar[Api]  # set by Api.route

    async def respond(
        self,
        request: Request,
        tenant: str,
        action: Callable[[], Awaitable[Any]],
        *,
        status: int = 200,
        unavailable: str = "a dependency is unavailable",
    ) -> Response:
        """The tenant's route, with the one error mapping of the API: the tenant (name, API key)
        checked first; ``ApiError`` its status, ``BadInput`` 400, a transient failure of a
        dependency (the store, the broker: errors.is_transient, timeouts) 503 ``unavailable``;
        ``action``'s result as the JSON body, None a 404. Anything else is a bug: a 500."""
        try:
            self.api.check_tenant(request, tenant)
            body = await action()
        except ApiError as exc:
            return _error(self, exc.status, str(exc))
        except BadInput as exc:
            return _error(self, 400, str(exc))
        except Exception as exc:
            if not (is_transient(exc) or isinstance(exc, (asyncio.TimeoutError, KafkaError))):
                raise
            log.warning("%s %s failed: %r", request.method, type(self).__name__, exc, extra={"tenant": tenant})
            return _error(self, 503, f"{unavailable}: {type(exc).__name__}")
        if body is None:
            return _error(self, 404, f"tenant {tenant!r}: not found")
        return self.bytes(orjson.dumps(body), status=status, content_type="application/json")


def _error(view: View, status: int, message: str) -> Response:
    """SPEC §7's error body: ``{"error": code, "detail": message}``."""
    return view.bytes(error_body(status, message), status=status, content_type="application/json")


async def _json_body(request: Request) -> Any:
    raw = await request.read()
    if len(raw) > 1_000_000:
        raise ApiError(413, "request body over 1 MB")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from exc


class SearchView(ApiView):
    @access_log(log)
    @tracing.server_span("search")
    async def post(self, request: Request, tenant: str) -> Response:
        try:
            api = self.api
            api.check_tenant(request, tenant)
            req = parse_search(await _json_body(request))
            pending: dict[str, int] = {}
            if req.min_version:  # read-your-writes: wait (bounded) for the versions, then read uncached
                pending = await wait_for_versions(
                    partial(_indexed_versions, api, tenant), req.min_version, timeout_s=api.settings.min_version_wait_s
                )
            cache, key = None if req.min_version else api.services.cache(), answer_key(req.query, req.k, req.doc_ids)
            if cache is not None and (hit := await tracing.call("cache.get", cache.get, tenant, key)) is not None:
                return _raw_answer(self, hit, source="cache")  # also while the breaker is open
            results = await api.breaker.call(partial(_search, api, tenant, req))
        except ApiError as exc:
            return _error(self, exc.status, str(exc))
        except BadInput as exc:
            return _error(self, 400, str(exc))
        except BreakerOpen:
            return await _degraded(self, tenant, req)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("search failed: %r; answered degraded", exc, extra={"tenant": tenant})
            return await _degraded(self, tenant, req)
        encoded = orjson.dumps(results)
        if cache is not None:
            await tracing.call("cache.put", cache.put, tenant, key, encoded)
        return _raw_answer(self, encoded, source="store", pending=pending)


async def _degraded(view: ApiView, tenant: str, req: SearchRequest) -> Response:
    """The store is unavailable: the fallback index's answer, or none (rag_streams/http/fallback.py)."""
    results, source = await fallback.answer(view.api.fallback, view.api.services, tenant, req)
    tracing.set_attributes({"rag.cached": False, "rag.degraded": True, "rag.source": source})
    body = {"results": results, "cached": False, "degraded": True, "source": source}
    return view.bytes(orjson.dumps(body), content_type="application/json")


async def _indexed_versions(api: Api, tenant: str, wanted: Mapping[str, int]) -> dict[str, int]:
    """The version indexed per document: the version the tenant's collection holds in full, or a
    delete this worker's index table applied, when it runs the index stage (a copy of a partition it
    no longer owns can be behind, never ahead; the store cannot tell a delete from a document that
    is not indexed yet)."""
    seen: dict[str, int] = {}
    table: Any = api.app.tables.get(APPLIED_VERSIONS)  # registered only where the index stage runs
    if table is not None:
        for doc_id in wanted:
            state = DocState.from_json(table.get(doc_key(tenant, doc_id)))
            if state is not None and state.deleted:
                seen[doc_id] = state.version
    rest = [doc_id for doc_id, version in wanted.items() if seen.get(doc_id, 0) < version]
    store, timeout_s = api.services.store(), api.settings.search_timeout_s
    if not rest or not await asyncio.wait_for(store.has_tenant(tenant), timeout_s):
        return seen
    for doc_id, version in (await asyncio.wait_for(store.doc_versions(tenant, rest), timeout_s)).items():
        seen[doc_id] = max(version, seen.get(doc_id, 0))
    return seen


async def _search(api: Api, tenant: str, req: SearchRequest) -> list[dict[str, Any]]:
    """The store calls of a search (model lookup, query), each bounded by RAG_SEARCH_TIMEOUT_S."""
    store, timeout_s = api.services.store(), api.settings.search_timeout_s
    current = await asyncio.wait_for(store.current_collection(tenant), timeout_s)  # uncached: model = alias's
    if current is None and req.min_version:  # waited for the tenant's first writes: none is indexed
        return []
    if current is None:
        raise ApiError(404, f"tenant {tenant!r} has no collection yet")
    embedder, index = await api.services.embedder(current.source), api.fallback
    feed = None if index is None else partial(index.feed, tenant, current.source, writes=index.writes(tenant))
    return await search(store, embedder, tenant, req, timeout_s=timeout_s, feed=feed)


def _raw_answer(view: View, results: bytes, *, source: str, pending: Mapping[str, int] | None = None) -> Response:
    """An answer from results already encoded (a cache hit is served without decoding it), from
    ``source`` (store or cache). ``pending``: min_version documents not indexed at that version
    when the wait ran out."""
    tracing.set_attributes({"rag.cached": source == "cache", "rag.degraded": False, "rag.source": source})
    cached = b"true" if source == "cache" else b"false"
    body = b'{"results":%b,"cached":%b,"degraded":false,"source":"%b"' % (results, cached, source.encode())
    if pending:
        body += b',"pending":%b' % orjson.dumps(pending)
    return view.bytes(body + b"}", content_type="application/json")


class PointsView(ApiView):
    """Every point of a tenant (ids and payloads, no vectors): audits and tests."""

    @access_log(log, logging.DEBUG)  # audits and tests poll it
    async def get(self, request: Request, tenant: str) -> Response:
        async def run() -> dict[str, Any]:
            store = self.api.services.store()
            points = await store.points(tenant) if await store.has_tenant(tenant) else []
            return {"points": [{"id": p.id, **{k: v for k, v in p.payload.items() if k != "text"}} for p in points]}

        return await self.respond(request, tenant, run, unavailable="the vector store is unavailable")


class HealthView(ApiView):
    async def get(self, request: Request) -> Response:
        return self.bytes(b'{"status":"ok"}', content_type="application/json")


class ReadyView(ApiView):
    async def get(self, request: Request) -> Response:
        app = self.api.app
        if app.consumer is None or app.rebalancing is not False:
            why = "no Kafka consumer yet" if app.consumer is None else "a consumer-group rebalance is in progress"
            body = {"ready": False, "error": "service_unavailable", "detail": f"not ready: {why}"}
            return self.bytes(orjson.dumps(body), status=503, content_type="application/json")
        return self.bytes(b'{"ready":true}', content_type="application/json")


class OpenApiView(ApiView):
    """The OpenAPI 3 document of this API (rag_streams/http/openapi.py)."""

    async def get(self, request: Request) -> Response:
        return self.bytes(_OPENAPI_JSON, content_type="application/json")


_OPENAPI_JSON = orjson.dumps(OPENAPI)


class MetricsView(ApiView):
    """Prometheus text; ``?name[]=a&name[]=b`` only those samples (client_python's restricted
    registry, as Prometheus's ``params: {name[]: [...]}`` asks): a poll for one counter then costs
    the event loop a fraction of a full scrape."""

    async def get(self, request: Request) -> Response:
        names = request.rel_url.query.getall("name[]", [])
        registry = metrics.REGISTRY.restricted_registry(names) if names else metrics.REGISTRY
        return self.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def register(p: Pipeline) -> Api:
    """Search, points, health, readiness, metrics and the OpenAPI document on ``p``'s app."""
    api = Api(p)
    install_json_errors(p.app.web)  # aiohttp's own errors (404, 405, 413, malformed HTTP) answer JSON too
    api.route("/v1/tenants/{tenant}/search", SearchView)
    api.route("/v1/tenants/{tenant}/points", PointsView)
    api.route("/healthz", HealthView)
    api.route("/readyz", ReadyView)
    api.route("/openapi.json", OpenApiView)
    api.route("/metrics", MetricsView)
    return api
