"""Collection admin endpoints of the index worker: how `reindex` reaches an embedded Qdrant.

The store is locked by this process, so `rag-streams reindex` sends its work here
(``rag_streams.adapters.reindex_remote.RemoteCollections`` is the client). Each endpoint is one
``VectorStore`` call; collection names must be the tenant's own generations.

- ``GET    /v1/tenants/{t}/collections``                the generations, which one is aliased
- ``POST   /v1/tenants/{t}/collections``                create generation n (not aliased)
- ``PUT    /v1/tenants/{t}/collections/{name}/points``  version-guarded upsert of a batch
- ``GET    /v1/tenants/{t}/collections/{name}/points``  a page of points with vectors (``?offset=&limit=``: backup)
- ``POST   /v1/tenants/{t}/collections/{name}/delete``  version-bounded delete (or trim) of a document
- ``PUT    /v1/tenants/{t}/alias``                      flip the alias (one atomic alias update)
- ``DELETE /v1/tenants/{t}/collections/{name}``         drop an old generation
"""

from __future__ import annotations

import uuid
from typing import Any

from faust.web import Request, Response

from rag_streams.adapters.store.base import Point
from rag_streams.errors import BadInput
from rag_streams.http.api import Api, ApiView, _json_body
from rag_streams.rules.records import MAX_VERSION, check_doc_id

MAX_GENERATION = 1_000_000
MAX_DIM = 65_536  # Qdrant's largest vector size
MAX_EXPORT_PAGE = 10_000  # points per page of a backup's export


def _int(body: dict[str, Any], name: str, *, optional: bool = False, low: int = 0, high: int = MAX_VERSION) -> Any:
    """An integer field in low..high (default: a version, 0..2^63-1); bools and strings refused."""
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadInput(f"'{name}' must be an integer from {low} to {high}")
    return value


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    return body


def _points(body: dict[str, Any]) -> list[Point]:
    raw = body.get("points")
    if not isinstance(raw, list) or not raw:
        raise BadInput("'points' must be a non-empty list")
    out = []
    for p in raw:
        if not (
            isinstance(p, dict)
            and isinstance(p.get("id"), str)
            and isinstance(p.get("vector"), list)
            and all(isinstance(x, (int, float)) for x in p["vector"])
            and isinstance(p.get("payload"), dict)
        ):
            raise BadInput("each point needs an 'id' (str), a 'vector' (numbers) and a 'payload' (object)")
        out.append(Point(p["id"], p["vector"], p["payload"]))
    return out


async def _handle(view: ApiView, request: Request, tenant: str, action: Any) -> Response:
    return await view.respond(request, tenant, action, unavailable="the vector store is unavailable")


class CollectionsView(ApiView):
    async def get(self, request: Request, tenant: str) -> Response:
        async def run() -> Any:
            return {"collections": [c.to_json() for c in await self.api.services.store().collections(tenant)]}

        return await _handle(self, request, tenant, run)

    async def post(self, request: Request, tenant: str) -> Response:
        async def run() -> Any:
            body = _object(await _json_body(request))
            model, source = body.get("model"), body.get("source")
            if not isinstance(model, str) or not (source is None or isinstance(source, str)):
                raise BadInput("'model' must be a string and 'source' a string or null")
            created = await self.api.services.store().create_generation(
                tenant,
                _int(body, "generation", high=MAX_GENERATION),
                _int(body, "dim", low=1, high=MAX_DIM),
                model,
                source,
            )
            return created.to_json()

        return await _handle(self, request, tenant, run)


class CollectionView(ApiView):
    async def delete(self, request: Request, tenant: str, name: str) -> Response:
        async def run() -> Any:
            await self.api.services.store().drop_collection(tenant, name)
            return {"dropped": name}

        return await _handle(self, request, tenant, run)


class CollectionPointsView(ApiView):
    async def get(self, request: Request, tenant: str, name: str) -> Response:
        async def run() -> Any:
            raw = request.query.get("limit", "1000")
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_EXPORT_PAGE:
                raise BadInput(f"'limit' must be an integer from 1 to {MAX_EXPORT_PAGE}")
            offset = request.query.get("offset") or None
            if offset is not None:
                try:
                    offset = str(uuid.UUID(offset))
                except ValueError:
                    raise BadInput("'offset' must be a point id (a UUID) from the previous page's 'next'") from None
            page, after = await self.api.services.store().export(tenant, name, offset=offset, limit=int(raw))
            return {
                "points": [{"id": p.id, "vector": list(p.vector), "payload": p.payload} for p in page],
                "next": after,
            }

        return await _handle(self, request, tenant, run)

    async def put(self, request: Request, tenant: str, name: str) -> Response:
        async def run() -> Any:
            body = _object(await _json_body(request))
            points = _points(body)
            same = body.get("same_version", False) is True
            await self.api.services.store().upsert(
                tenant, points, version=_int(body, "version"), same_version=same, collection=name
            )
            return {"upserted": len(points)}

        return await _handle(self, request, tenant, run)


class CollectionDeleteView(ApiView):
    async def post(self, request: Request, tenant: str, name: str) -> Response:
        async def run() -> Any:
            body = _object(await _json_body(request))
            doc_id = check_doc_id(body.get("doc_id"))
            if body.get("trim_version") is not None:  # older versions than the newest stored
                await self.api.services.store().trim_doc(
                    tenant, doc_id, version=_int(body, "trim_version"), collection=name
                )
                return {"trimmed": doc_id}
            await self.api.services.store().delete_doc(
                tenant,
                doc_id,
                below_version=_int(body, "below_version", optional=True),
                upto_version=_int(body, "upto_version", optional=True),
                collection=name,
            )
            return {"deleted": doc_id}

        return await _handle(self, request, tenant, run)


class AliasView(ApiView):
    async def put(self, request: Request, tenant: str) -> Response:
        async def run() -> Any:
            name = _object(await _json_body(request)).get("collection")
            if not isinstance(name, str):
                raise BadInput("'collection' must be a string")
            await self.api.services.store().flip_alias(tenant, name)
            return {"tenant": tenant, "collection": name}

        return await _handle(self, request, tenant, run)


def register(api: Api) -> None:
    """The collection admin endpoints on the API's app (the index worker: it holds the store)."""
    api.route("/v1/tenants/{tenant}/collections", CollectionsView)
    api.route("/v1/tenants/{tenant}/collections/{name}", CollectionView)
    api.route("/v1/tenants/{tenant}/collections/{name}/points", CollectionPointsView)
    api.route("/v1/tenants/{tenant}/collections/{name}/delete", CollectionDeleteView)
    api.route("/v1/tenants/{tenant}/alias", AliasView)
