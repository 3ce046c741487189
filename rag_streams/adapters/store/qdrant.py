"""``VectorStore`` on qdrant-client: a Qdrant server (``RAG_QDRANT_URL``), or in memory for tests.

One alias per tenant (``{prefix}_{tenant}``) points at a physical collection
(``{prefix}_{tenant}__v{n}``). Upserts carry Qdrant's conditional ``update_filter``
(stored version lower than the new one), a second guard behind the Faust version tables.
The client is synchronous; every call runs on one dedicated thread, off the event loop
(embedded Qdrant is not safe for concurrent use). The alias and the generations (reindex)
are managed by the base class, in ``qdrant_collections.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from rag_streams.adapters.store.base import Hit, Point, complete_versions, hit_vector, plan_reuse
from rag_streams.adapters.store.qdrant_collections import QdrantCollections

__all__ = ["QdrantVectorStore"]


def _version_range(*, lt: int | None = None, lte: int | None = None) -> models.FieldCondition:
    return models.FieldCondition(key="version", range=models.Range(lt=lt, lte=lte))


class QdrantVectorStore(QdrantCollections):
    """VectorStore on qdrant-client; ``QdrantVectorStore.in_memory()`` is the test double."""

    @classmethod
    def connect(
        cls,
        *,
        url: str | None,
        path: str | None,
        api_key: str | None = None,
        prefix: str = "rag",
        quantization: str = "none",
    ) -> QdrantVectorStore:
        if url:
            return cls(QdrantClient(url=url, api_key=api_key, timeout=10), prefix=prefix, quantization=quantization)
        return cls(QdrantClient(path=path), prefix=prefix, quantization=quantization)

    @classmethod
    def in_memory(cls, prefix: str = "rag", quantization: str = "none") -> QdrantVectorStore:
        return cls(QdrantClient(location=":memory:"), prefix=prefix, quantization=quantization)

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
        (> ``version`` when ``same_version``: a repair rewrites points of the version it replays).
        ``collection``: one of the tenant's generations instead of the alias (reindex)."""
        target = self._target(tenant, collection)
        structs = [models.PointStruct(id=p.id, vector=list(p.vector), payload=p.payload) for p in points]
        guard = models.Filter(must=[_version_range(lte=version) if same_version else _version_range(lt=version)])
        await self._run(lambda: self._client.upsert(target, structs, update_filter=guard, wait=True))

    async def reuse(self, tenant: str, updates: Sequence[tuple[str, dict[str, Any]]], *, version: int) -> list[str]:
        """Give stored points whose text is unchanged the payload of ``version`` (their vector stays).

        ``updates`` are (point id, new payload with its ``content_hash``). Returns the ids that are
        not stored with that content hash: those need an embedding (``verify --repair``).
        """
        alias = self.alias(tenant)

        def run() -> list[str]:
            ids = [pid for pid, _ in updates]
            stored = {
                str(p.id): (p.payload or {}).get("content_hash")
                for p in self._client.retrieve(alias, ids, with_payload=["content_hash"], with_vectors=False)
            }
            missing, groups = plan_reuse(updates, stored)
            ops: list[Any] = [
                models.SetPayloadOperation(
                    set_payload=models.SetPayload(
                        payload=common,
                        filter=models.Filter(must=[models.HasIdCondition(has_id=ids), _version_range(lt=version)]),
                    )
                )
                for common, ids in groups
            ]
            if ops:
                self._client.batch_update_points(alias, ops, wait=True)
            return missing

        return await self._run(run)

    async def retag(
        self, tenant: str, doc_id: str, common: dict[str, Any], *, previous: int, version: int, expect: int
    ) -> int:
        """Move an unchanged document from ``previous`` to ``version``: when exactly ``expect`` points
        of it are stored at ``previous``, give them ``common`` (document-level keys) and the new
        version in ONE filtered ``set_payload``. Returns the number found at ``previous``."""
        if not await self.has_tenant(tenant):
            return 0
        alias = self.alias(tenant)
        at = models.Filter(
            must=[
                models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id)),
                models.FieldCondition(key="version", range=models.Range(gte=previous, lte=previous)),
            ]
        )

        def run() -> int:
            found = self._client.count(alias, count_filter=at, exact=True).count
            if found == expect:
                self._client.set_payload(alias, {**common, "version": version}, points=at, wait=True)
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
        target = self._target(tenant, collection)
        must: list[Any] = [models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))]
        if below_version is not None or upto_version is not None:
            must.append(_version_range(lt=below_version, lte=upto_version))
        selector = models.FilterSelector(filter=models.Filter(must=must))
        await self._run(lambda: self._client.delete(target, points_selector=selector, wait=True))

    async def trim_doc(self, tenant: str, doc_id: str, *, version: int, collection: str | None = None) -> None:
        """Delete the document's points older than the newest version stored for it (at least ``version``).

        A replay (reindex) racing the live index stage may upsert an older version after a newer one:
        the guard keeps the newer points, but slots only the older version has would stay behind.
        """
        target = self._target(tenant, collection)
        of_doc = models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))

        def run() -> None:
            stored = self._scroll_all(target, models.Filter(must=[of_doc]), ["version"])
            newest = max([version, *(int(p.get("version", 0)) for _, p in stored)])
            selector = models.FilterSelector(filter=models.Filter(must=[of_doc, _version_range(lt=newest)]))
            self._client.delete(target, points_selector=selector, wait=True)

        await self._run(run)

    # --- reads ---------------------------------------------------------------
    async def search(
        self, tenant: str, vector: Sequence[float], k: int, *, doc_ids: Sequence[str] | None = None
    ) -> list[Hit]:
        flt = None
        if doc_ids:
            flt = models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids)))])
        res = await self._run(
            lambda: self._client.query_points(
                self.alias(tenant), query=list(vector), limit=k, query_filter=flt, with_payload=True, with_vectors=True
            )
        )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {}), hit_vector(p.vector)) for p in res.points]

    async def doc_versions(self, tenant: str, doc_ids: Sequence[str]) -> dict[str, int]:
        """The version each document is stored at in full: every chunk of it, nothing older left.
        Documents with no point, or in the middle of a replacement, are left out (read-your-writes)."""
        flt = models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids)))])

        def run() -> dict[str, int]:
            rows = self._scroll_all(self.alias(tenant), flt, ["doc_id", "version", "chunk_count"])
            return complete_versions(body for _, body in rows)

        return await self._run(run)

    async def points(self, tenant: str) -> list[Hit]:
        """Every point of the tenant (id and payload): for audits and tests."""

        def run() -> list[Hit]:
            return [Hit(pid, 1.0, body) for pid, body in self._scroll_all(self.alias(tenant), None, True)]

        return await self._run(run)

    async def export(
        self, tenant: str, collection: str | None = None, *, offset: str | None = None, limit: int = 1000
    ) -> tuple[list[Point], str | None]:
        """One page of points with their vectors and payloads (backups), and the next page's offset."""
        target = self._target(tenant, collection)

        def run() -> tuple[list[Point], str | None]:
            batch, after = self._client.scroll(
                target, None, limit=limit, offset=offset, with_payload=True, with_vectors=True
            )
            points = []
            for p in batch:
                vector: Any = p.vector.get("") if isinstance(p.vector, dict) else p.vector
                points.append(Point(str(p.id), [float(x) for x in vector or []], dict(p.payload or {})))
            return points, None if after is None else str(after)

        return await self._run(run)

    async def count(self, tenant: str) -> int:
        """The exact number of points in the tenant's aliased collection (0 without one): index health."""
        alias = self.alias(tenant)
        return await self._run(lambda: self._client.count(alias, exact=True).count if self._alias_target(alias) else 0)

    def _scroll_all(
        self, collection: str, flt: models.Filter | None, with_payload: bool | list[str]
    ) -> list[tuple[str, dict[str, Any]]]:
        """(id, payload) of every point matching ``flt``, page by page (on the store's thread)."""
        out: list[tuple[str, dict[str, Any]]] = []
        offset = None
        while True:
            batch, offset = self._client.scroll(collection, flt, limit=1000, offset=offset, with_payload=with_payload)
            out += [(str(p.id), dict(p.payload or {})) for p in batch]
            if offset is None:
                return out
