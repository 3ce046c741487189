"""``EdgeVectorStore``: the embedded default, Qdrant's own engine in-process (qdrant-edge-py).

Same behaviour as ``QdrantVectorStore`` (the store contract suite runs on both): upserts carry
Edge's conditional upsert (stored version lower than the new one), deletes and reuse are single
filtered operations on the ``doc_id`` / ``version`` payload indexes, never one call per point.
Collections and the alias are in ``edge_collections.py``, background index builds in ``edge_shards.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qdrant_edge import (
    CountRequest,
    FieldCondition,
    Filter,
    HasIdCondition,
    MatchAny,
    MatchValue,
    QuantizationSearchParams,
    Query,
    QueryRequest,
    RangeFloat,
    ScrollRequest,
    SearchParams,
    UpdateOperation,
)
from qdrant_edge import (
    Point as EdgePoint,
)

from rag_streams.adapters.store.base import Hit, Point, complete_versions, hit_vector, plan_reuse
from rag_streams.adapters.store.edge_collections import EdgeCollections

__all__ = ["EdgeVectorStore"]


#: Edge, unlike a Qdrant server, does not rescore quantized collections unless asked: the int8
#: search finds 2k candidates and the original vectors rank them (ignored without quantization)
_SEARCH_PARAMS = SearchParams(quantization=QuantizationSearchParams(rescore=True, oversampling=2.0))


def _version(*, lt: int | None = None, lte: int | None = None) -> FieldCondition:
    return FieldCondition("version", range=RangeFloat(lt=lt, lte=lte))


def _of_doc(doc_id: str) -> FieldCondition:
    return FieldCondition("doc_id", match=MatchValue(doc_id))


class EdgeVectorStore(EdgeCollections):
    """VectorStore on Qdrant Edge shards under one directory."""

    @classmethod
    def open(
        cls,
        root: Path | str,
        *,
        prefix: str = "rag",
        index_threshold: int = 20_000,
        segment_index_kb: int | None = None,
        quantization: str = "none",
    ) -> EdgeVectorStore:
        return cls(
            root,
            prefix=prefix,
            index_threshold=index_threshold,
            segment_index_kb=segment_index_kb,
            quantization=quantization,
        )

    # --- writes --------------------------------------------------------------
    async def upsert(
        self,
        tenant: str,
        points: Sequence[Point],
        *,
        version: int,
        same_version: bool = False,
        collection: str | None = None,
    ) -> None:
        """Upsert points of one version; a point already stored with a version >= ``version`` is kept
        (> ``version`` when ``same_version``: a repair rewrites points of the version it replays)."""
        if not points:
            return
        name = self._resolve(tenant, collection)
        guard = Filter(must=[_version(lte=version) if same_version else _version(lt=version)])
        batch = [EdgePoint(p.id, [float(x) for x in p.vector], p.payload) for p in points]
        await self._run(
            lambda: self._apply(name, UpdateOperation.upsert_points(batch, condition=guard), points=len(batch))
        )
        self._maybe_build_index(name)

    async def reuse(self, tenant: str, updates: Sequence[tuple[str, dict[str, Any]]], *, version: int) -> list[str]:
        """Give stored points whose text is unchanged the payload of ``version`` (their vector stays).

        Returns the ids not stored with that content hash (those need an embedding). The points of
        one document share everything but their slot's own keys, so a document costs one filtered
        ``set_payload``, whatever its chunk count."""
        if not updates:
            return []
        name = self._resolve(tenant, None)

        def run() -> list[str]:
            shard = self._handle(name).shard
            records = shard.retrieve([pid for pid, _ in updates], ["content_hash"], False)
            missing, groups = plan_reuse(updates, {str(r.id): (r.payload or {}).get("content_hash") for r in records})
            for common, ids in groups:
                only = Filter(must=[HasIdCondition(set(ids)), _version(lt=version)])
                self._apply(name, UpdateOperation.set_payload_by_filter(only, common))
            return missing

        return await self._run(run)

    async def retag(
        self, tenant: str, doc_id: str, common: dict[str, Any], *, previous: int, version: int, expect: int
    ) -> int:
        """Move an unchanged document from ``previous`` to ``version``: when exactly ``expect`` points
        of it are stored at ``previous``, give them ``common`` (document-level keys) and the new
        version in ONE filtered ``set_payload``; their vectors and slot keys stay. Returns the
        number of points found at ``previous`` (not ``expect``: nothing was written)."""
        if not await self.has_tenant(tenant):
            return 0
        name = self._resolve(tenant, None)
        at = Filter(must=[_of_doc(doc_id), FieldCondition("version", range=RangeFloat(gte=previous, lte=previous))])

        def run() -> int:
            found = int(self._handle(name).shard.count(CountRequest(exact=True, filter=at)))
            if found == expect:
                self._apply(name, UpdateOperation.set_payload_by_filter(at, {**common, "version": version}))
            return found

        return await self._run(run)

    async def delete_doc(
        self,
        tenant: str,
        doc_id: str,
        *,
        below_version: int | None = None,
        upto_version: int | None = None,
        collection: str | None = None,
    ) -> None:
        """Delete a document's points with version < below_version (leftovers) or <= upto_version (delete)."""
        name = self._resolve(tenant, collection)
        must: list[Any] = [_of_doc(doc_id)]
        if below_version is not None or upto_version is not None:
            must.append(_version(lt=below_version, lte=upto_version))
        await self._run(lambda: self._apply(name, UpdateOperation.delete_points_by_filter(Filter(must=must))))

    async def trim_doc(self, tenant: str, doc_id: str, *, version: int, collection: str | None = None) -> None:
        """Delete the document's points older than the newest version stored for it (at least ``version``)."""
        name = self._resolve(tenant, collection)

        def run() -> None:
            stored = self._scroll(name, Filter(must=[_of_doc(doc_id)]), ["version"])
            newest = max([version, *(int(p.get("version", 0)) for _, p in stored)])
            self._apply(
                name, UpdateOperation.delete_points_by_filter(Filter(must=[_of_doc(doc_id), _version(lt=newest)]))
            )

        await self._run(run)

    # --- reads ---------------------------------------------------------------
    async def search(
        self, tenant: str, vector: Sequence[float], k: int, *, doc_ids: Sequence[str] | None = None
    ) -> list[Hit]:
        name = self._resolve(tenant, None)
        flt = Filter(must=[FieldCondition("doc_id", match=MatchAny(list(doc_ids)))]) if doc_ids else None
        query = Query.Nearest(vector if isinstance(vector, list) else [float(x) for x in vector])
        request = QueryRequest(
            limit=k, query=query, with_payload=True, with_vector=True, filter=flt, params=_SEARCH_PARAMS
        )
        found = await self._run(lambda: self._handle(name).shard.query(request))
        return [Hit(str(p.id), float(p.score), dict(p.payload or {}), hit_vector(p.vector)) for p in found]

    async def doc_versions(self, tenant: str, doc_ids: Sequence[str]) -> dict[str, int]:
        """The version each document is stored at in full: every chunk of it, nothing older left."""
        if not doc_ids or not await self.has_tenant(tenant):
            return {}
        name = self._resolve(tenant, None)
        flt = Filter(must=[FieldCondition("doc_id", match=MatchAny(list(doc_ids)))])
        rows = await self._run(lambda: self._scroll(name, flt, ["doc_id", "version", "chunk_count"]))
        return complete_versions(body for _, body in rows)

    async def points(self, tenant: str) -> list[Hit]:
        """Every point of the tenant (id and payload): for audits and tests."""
        name = self._resolve(tenant, None)
        return [Hit(pid, 1.0, body) for pid, body in await self._run(lambda: self._scroll(name, None, True))]

    async def count(self, tenant: str) -> int:
        """The exact number of points in the tenant's aliased collection (0 without one): index health."""
        name = self._alias_target(self.alias(tenant))
        if name is None:
            return 0
        return int(await self._run(lambda: self._handle(name).shard.count(CountRequest(exact=True))))

    async def vectors(self, tenant: str, collection: str | None = None) -> list[Point]:
        """Every point with its vector (migration and backups)."""
        name = self._resolve(tenant, collection)
        return await self._run(lambda: self._scroll_points(name))

    async def export(
        self, tenant: str, collection: str | None = None, *, offset: str | None = None, limit: int = 1000
    ) -> tuple[list[Point], str | None]:
        """One page of points with their vectors and payloads (backups), and the next page's offset."""
        name = self._resolve(tenant, collection)

        def run() -> tuple[list[Point], str | None]:
            request = ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=True)
            records, after = self._handle(name).shard.scroll(request)
            points = []
            for r in records:
                vector: Any = r.vector[""] if isinstance(r.vector, dict) else r.vector
                points.append(Point(str(r.id), list(vector or []), dict(r.payload or {})))
            return points, None if after is None else str(after)

        return await self._run(run)

    def _scroll(
        self, name: str, flt: Filter | None, with_payload: bool | list[str]
    ) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        shard, offset = self._handle(name).shard, None
        while True:
            records, offset = shard.scroll(
                ScrollRequest(offset=offset, limit=1000, filter=flt, with_payload=with_payload)
            )
            out += [(str(r.id), dict(r.payload or {})) for r in records]
            if offset is None:
                return out

    def _scroll_points(self, name: str) -> list[Point]:
        out: list[Point] = []
        shard, offset = self._handle(name).shard, None
        while True:
            records, offset = shard.scroll(
                ScrollRequest(offset=offset, limit=1000, with_payload=True, with_vector=True)
            )
            for r in records:
                vector: Any = r.vector[""] if isinstance(r.vector, dict) else r.vector
                out.append(Point(str(r.id), list(vector or []), dict(r.payload or {})))
            if offset is None:
                return out
