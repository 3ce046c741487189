"""The OpenAPI 3 document (paths here, body schemas in openapi_schemas.py) of the worker's HTTP API, served at ``GET /openapi.json`` (SPEC §7).

Written by hand, in this one place; ``tests/unit/test_http_contract.py`` checks that its paths
and methods are exactly the routes the worker registers, and ``tests/integration/test_api_fuzz.py``
fuzzes a running worker against it. Prose: ``docs/http-api.md``.
"""

from __future__ import annotations

from typing import Any

from rag_streams.http.openapi_schemas import SCHEMAS, ref
from rag_streams.rules.records import MAX_DOC_ID_CHARS

__all__ = ["OPENAPI"]

_JSON = "application/json"


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


_ERROR_WORDS = {
    400: "bad input (the detail names the rule)",
    401: "missing or unknown API key (when RAG_API_KEYS is set)",
    403: "the API key belongs to another tenant",
    404: "no such route, or the tenant has no collection yet",
    405: "method not allowed on this path",
    413: "request body over 1 MB",
    503: "a dependency (Kafka, the vector store) is unavailable",
}


def _op(summary: str, ok: dict[str, Any], *extra_errors: int, body: str | None = None, **more: Any) -> dict[str, Any]:
    """An operation; every one may answer 400, 404, 405 and 413 (and ``extra_errors``) with ``Error``."""
    errors = {str(s): {"$ref": f"#/components/responses/E{s}"} for s in (400, 404, 405, 413, *extra_errors)}
    op: dict[str, Any] = {"summary": summary, "responses": {**ok, **errors}, **more}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {_JSON: {"schema": ref(body)}}}
    return op


_TENANT = {
    "name": "tenant",
    "in": "path",
    "required": True,
    "description": "tenant id",
    "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
}
_DOC_ID = {
    "name": "doc_id",
    "in": "path",
    "required": True,
    "description": f"1..{MAX_DOC_ID_CHARS} characters, no control character, not whitespace only, "
    "no '.' or '..' path segment (a '/' in it is sent as %2F)",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_DOC_ID_CHARS},
}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "one of the tenant's generations, {prefix}_{tenant}__v{n}",
    "schema": {"type": "string"},
}
_TENANT_AUTH: dict[str, Any] = {"parameters": [_TENANT], "security": [{}, {"bearer": []}]}

_RESPONSES = {f"E{status}": _json(ref("Error"), words) for status, words in _ERROR_WORDS.items()}

_ADMIN = "collection admin (index worker only; used by `rag-streams reindex`)"

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "rag-streams HTTP API",
        "version": "1",
        "description": "Search and publish documents, health and metrics. Every 4xx/5xx answers "
        '{"error": code, "detail": text}. Prose: docs/http-api.md.',
    },
    "components": {
        "schemas": SCHEMAS,
        "responses": _RESPONSES,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "one key per tenant"}},
    },
    "paths": {
        "/": {"get": _op("Faust's status page", {"200": _json({"type": "object"}, "ok")})},
        "/healthz": {"get": _op("liveness", {"200": _json({"type": "object"}, "the process answers")})},
        "/readyz": {
            "get": _op(
                "readiness: a Kafka consumer and no rebalance in progress",
                {
                    "200": _json({"type": "object", "properties": {"ready": {"type": "boolean"}}}, "ready"),
                    "503": _json({"allOf": [ref("Error"), {"properties": {"ready": {"enum": [False]}}}]}, "not ready"),
                },
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                parameters=[
                    {
                        "name": "name[]",
                        "in": "query",
                        "required": False,
                        "description": "only these samples (repeatable), as Prometheus's params: {name[]: [...]}",
                        "schema": {"type": "array", "items": {"type": "string"}},
                        "style": "form",
                        "explode": True,
                    }
                ],
            )
        },
        "/openapi.json": {"get": _op("this document", {"200": _json({"type": "object"}, "OpenAPI 3")})},
        "/v1/tenants/{tenant}/search": {
            "post": _op(
                "semantic search in the tenant's collection",
                {"200": _json(ref("SearchResponse"), "the results")},
                401,
                403,
                body="SearchRequest",
                **_TENANT_AUTH,
            )
        },
        "/v1/tenants/{tenant}/points": {
            "get": _op(
                "every point of the tenant (payloads, no vectors)",
                {"200": _json(ref("Points"), "points")},
                401,
                403,
                **_TENANT_AUTH,
            )
        },
        "/v1/tenants/{tenant}/stats": {
            "get": _op(
                "index health (index worker only): stored against expected point count, documents, model",
                {"200": _json(ref("TenantStats"), "the tenant's stats")},
                401,
                403,
                503,
                **_TENANT_AUTH,
            )
        },
        "/v1/tenants/{tenant}/documents/{doc_id}": {
            "parameters": [_TENANT, _DOC_ID],
            "put": _op(
                "publish a document version (acknowledged by Kafka; indexed asynchronously)",
                {"202": _json(ref("DocumentAccepted"), "on the raw topic")},
                401,
                403,
                503,
                body="DocumentPut",
                security=[{}, {"bearer": []}],
            ),
            "delete": _op(
                "publish a delete",
                {"202": _json(ref("DocumentAccepted"), "on the raw topic")},
                401,
                403,
                503,
                security=[{}, {"bearer": []}],
                parameters=[
                    {
                        "name": "version",
                        "in": "query",
                        "required": False,
                        "description": "decimal digits, 0..2^63-1; absent: epoch microseconds",
                        "schema": {"type": "string", "pattern": "^(0|[1-9][0-9]{0,18})$"},
                    }
                ],
            ),
        },
        "/v1/tenants/{tenant}/collections": {
            "get": _op(
                _ADMIN + ": the generations",
                {"200": _json({"type": "object"}, "collections")},
                401,
                403,
                **_TENANT_AUTH,
            ),
            "post": _op(
                _ADMIN + ": create a generation",
                {"200": _json(ref("Collection"), "created")},
                401,
                403,
                body="CollectionCreate",
                **_TENANT_AUTH,
            ),
        },
        "/v1/tenants/{tenant}/collections/{name}": {
            "delete": _op(
                _ADMIN + ": drop a generation",
                {"200": _json({"type": "object"}, "dropped")},
                401,
                403,
                parameters=[_TENANT, _NAME],
                security=[{}, {"bearer": []}],
            )
        },
        "/v1/tenants/{tenant}/collections/{name}/points": {
            "get": _op(
                _ADMIN + ": a page of points with their vectors and payloads (backup)",
                {"200": _json({"type": "object"}, "points, and the next page's offset (null: the last page)")},
                401,
                403,
                parameters=[
                    _TENANT,
                    _NAME,
                    {"name": "offset", "in": "query", "required": False, "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,5}$"},
                    },
                ],
                security=[{}, {"bearer": []}],
            ),
            "put": _op(
                _ADMIN + ": version-guarded upsert",
                {"200": _json({"type": "object"}, "upserted")},
                401,
                403,
                body="PointsUpsert",
                parameters=[_TENANT, _NAME],
                security=[{}, {"bearer": []}],
            ),
        },
        "/v1/tenants/{tenant}/collections/{name}/delete": {
            "post": _op(
                _ADMIN + ": version-bounded delete or trim of a document",
                {"200": _json({"type": "object"}, "done")},
                401,
                403,
                body="DocDelete",
                parameters=[_TENANT, _NAME],
                security=[{}, {"bearer": []}],
            )
        },
        "/v1/tenants/{tenant}/alias": {
            "put": _op(
                _ADMIN + ": flip the alias",
                {"200": _json({"type": "object"}, "flipped")},
                401,
                403,
                body="AliasFlip",
                **_TENANT_AUTH,
            )
        },
    },
}
