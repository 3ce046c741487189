"""The index worker's collection admin API, as a client: how `reindex` writes into embedded Qdrant.

Embedded Qdrant is locked by the one process that opened it (the index worker), so `reindex`
does the Kafka reading, chunking and embedding itself and sends point batches to the worker
(`rag_streams/http/admin.py`). ``RemoteCollections`` has the same methods as the
``VectorStore`` (``rag_streams.adapters.store.base.Collections``), so the reindex loop does not know which
one it writes through: with ``RAG_QDRANT_URL`` it talks to Qdrant directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from rag_streams.adapters.store.base import Collection, Point
from rag_streams.errors import BadInput, CliError, TransientError
from rag_streams.settings import Settings

__all__ = ["RemoteCollections"]


class RemoteCollections:
    def __init__(self, settings: Settings, api_key: str | None = None, *, timeout: float = 60.0) -> None:
        self._base = settings.query_api_url.rstrip("/")
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        """One request; connection failures and 5xx are transient (retried), 4xx are the caller's fault."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        data = None if body is None else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        try:
            async with self._session.request(method, self._base + path, data=data) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"index worker API at {self._base} unreachable: {exc}") from exc
        try:
            answer = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            answer = {"detail": raw.decode(errors="replace")[:200]}
        if status >= 500:
            raise TransientError(f"{method} {path}: {status} {answer.get('detail', answer)}")
        if status == 404 and path.endswith("/collections") and method == "GET":
            raise CliError(f"the worker at {self._base} has no collection admin API (is it an index worker?)")
        if status >= 400:
            raise BadInput(f"{method} {path}: {status} {answer.get('detail', answer)}")
        return answer

    @staticmethod
    def _path(tenant: str, *parts: str) -> str:
        return "/".join([f"/v1/tenants/{quote(tenant, safe='')}", *(quote(p, safe="") for p in parts)])

    async def collections(self, tenant: str) -> list[Collection]:
        body = await self._call("GET", self._path(tenant, "collections"))
        return [Collection.from_json(c) for c in body["collections"]]

    async def current_collection(self, tenant: str) -> Collection | None:
        return next((c for c in await self.collections(tenant) if c.aliased), None)

    async def create_generation(
        self, tenant: str, generation: int, dim: int, model: str, source: str | None = None
    ) -> Collection:
        body = {"generation": generation, "dim": dim, "model": model, "source": source}
        return Collection.from_json(await self._call("POST", self._path(tenant, "collections"), body))

    async def upsert(
        self,
        tenant: str,
        points: Sequence[Point],
        *,
        version: int,
        same_version: bool = False,
        collection: str | None = None,
    ) -> None:
        body = {
            "version": version,
            "same_version": same_version,
            "points": [{"id": p.id, "vector": list(p.vector), "payload": p.payload} for p in points],
        }
        await self._call("PUT", self._path(tenant, "collections", self._name(collection), "points"), body)

    async def export(
        self, tenant: str, collection: str | None = None, *, offset: str | None = None, limit: int = 1000
    ) -> tuple[list[Point], str | None]:
        """One page of a generation's points with their vectors (backup)."""
        query = f"?limit={limit}" + (f"&offset={quote(offset, safe='')}" if offset else "")
        body = await self._call("GET", self._path(tenant, "collections", self._name(collection), "points") + query)
        return [Point(p["id"], p["vector"], p["payload"]) for p in body["points"]], body.get("next")

    async def delete_doc(
        self,
        tenant: str,
        doc_id: str,
        *,
        below_version: int | None = None,
        upto_version: int | None = None,
        collection: str | None = None,
    ) -> None:
        body = {"doc_id": doc_id, "below_version": below_version, "upto_version": upto_version}
        await self._call("POST", self._path(tenant, "collections", self._name(collection), "delete"), body)

    async def trim_doc(self, tenant: str, doc_id: str, *, version: int, collection: str | None = None) -> None:
        body = {"doc_id": doc_id, "trim_version": version}
        await self._call("POST", self._path(tenant, "collections", self._name(collection), "delete"), body)

    async def flip_alias(self, tenant: str, collection: str) -> None:
        await self._call("PUT", self._path(tenant, "alias"), {"collection": collection})

    async def drop_collection(self, tenant: str, collection: str) -> None:
        await self._call("DELETE", self._path(tenant, "collections", collection))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @staticmethod
    def _name(collection: str | None) -> str:
        if collection is None:
            raise ValueError("the admin API writes into a named collection")
        return collection
