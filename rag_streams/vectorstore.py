"""The ``VectorStore`` protocol and its Qdrant implementation (server or embedded local mode).

One alias per tenant (``{prefix}_{tenant}``) points at a physical collection
(``{prefix}_{tenant}__v{n}``). Upserts carry Qdrant's conditional ``update_filter``
(stored version lower than the new one), a second guard behind the Faust version tables.
The client is synchronous; every call runs on one dedicated thread, off the event loop
(embedded Qdrant is not safe for concurrent use).
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from qdrant_client import QdrantClient, models

from rag_streams.ids import collection_alias, collection_name

__all__ = ["Hit", "Point", "QdrantVectorStore", "VectorStore"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Point:
    id: str
    vector: Sequence[float]
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any]


class VectorStore(Protocol):
    async def ensure_tenant(self, tenant: str, dim: int, model: str) -> str: ...
    async def upsert(
        self, tenant: str, points: Sequence[Point], *, version: int, same_version: bool = False
    ) -> None: ...
    async def reuse(self, tenant: str, updates: Sequence[tuple[str, dict[str, Any]]], *, version: int) -> list[str]: ...
    async def delete_doc(
        self, tenant: str, doc_id: str, *, below_version: int | None = None, upto_version: int | None = None
    ) -> None: ...
    async def search(
        self, tenant: str, vector: Sequence[float], k: int, *, doc_ids: Sequence[str] | None = None
    ) -> list[Hit]: ...
    async def points(self, tenant: str) -> list[Hit]: ...
    async def has_tenant(self, tenant: str) -> bool: ...
    async def close(self) -> None: ...


def _version_range(*, lt: int | None = None, lte: int | None = None) -> models.FieldCondition:
    return models.FieldCondition(key="version", range=models.Range(lt=lt, lte=lte))


class QdrantVectorStore:
    """VectorStore on qdrant-client; ``QdrantVectorStore.in_memory()`` is the test double."""

    def __init__(self, client: QdrantClient, *, prefix: str = "rag") -> None:
        self._client = client
        self._prefix = prefix
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant")
        self._known: set[str] = set()

    @classmethod
    def connect(
        cls, *, url: str | None, path: str | None, api_key: str | None = None, prefix: str = "rag"
    ) -> QdrantVectorStore:
        if url:
            return cls(QdrantClient(url=url, api_key=api_key, timeout=10), prefix=prefix)
        return cls(QdrantClient(path=path), prefix=prefix)

    @classmethod
    def in_memory(cls, prefix: str = "rag") -> QdrantVectorStore:
        return cls(QdrantClient(location=":memory:"), prefix=prefix)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def alias(self, tenant: str) -> str:
        return collection_alias(self._prefix, tenant)

    # --- collections ---------------------------------------------------------
    def _alias_target(self, alias: str) -> str | None:
        for a in self._client.get_aliases().aliases:
            if a.alias_name == alias:
                return a.collection_name
        return None

    def _generations(self, tenant: str) -> list[int]:
        pattern = re.compile(re.escape(self.alias(tenant)) + r"__v(\d+)")
        return sorted(
            int(m.group(1)) for c in self._client.get_collections().collections if (m := pattern.fullmatch(c.name))
        )

    def _create_collection(self, name: str, dim: int, model: str) -> None:
        self._client.create_collection(
            name,
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            metadata={"model": model, "dim": dim},
        )
        with warnings.catch_warnings():  # embedded Qdrant warns that it has no use for payload indexes
            warnings.simplefilter("ignore", UserWarning)
            self._client.create_payload_index(name, "doc_id", models.PayloadSchemaType.KEYWORD)
            self._client.create_payload_index(name, "version", models.PayloadSchemaType.INTEGER)

    async def ensure_tenant(self, tenant: str, dim: int, model: str) -> str:
        """Create the tenant's first collection and alias if missing; return the alias."""
        alias = self.alias(tenant)
        if alias in self._known:
            return alias

        def create() -> None:
            if self._alias_target(alias) is None:
                name = collection_name(self._prefix, tenant, max(self._generations(tenant), default=0) + 1)
                self._create_collection(name, dim, model)
                self._client.update_collection_aliases(
                    change_aliases_operations=[
                        models.CreateAliasOperation(
                            create_alias=models.CreateAlias(collection_name=name, alias_name=alias)
                        )
                    ]
                )

        await self._run(create)
        self._known.add(alias)
        return alias

    async def has_tenant(self, tenant: str) -> bool:
        return await self._run(lambda: self._alias_target(self.alias(tenant)) is not None)

    # --- writes --------------------------------------------------------------
    async def upsert(self, tenant: str, points: Sequence[Point], *, version: int, same_version: bool = False) -> None:
        """Upsert points of one version; a point already stored with a version >= ``version`` is kept
        (> ``version`` when ``same_version``: a repair rewrites points of the version it replays)."""
        structs = [models.PointStruct(id=p.id, vector=list(p.vector), payload=p.payload) for p in points]
        guard = models.Filter(must=[_version_range(lte=version) if same_version else _version_range(lt=version)])
        await self._run(lambda: self._client.upsert(self.alias(tenant), structs, update_filter=guard, wait=True))

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
            missing = [pid for pid, body in updates if stored.get(pid) != body.get("content_hash")]
            ops: list[Any] = [
                models.SetPayloadOperation(
                    set_payload=models.SetPayload(
                        payload=body,
                        filter=models.Filter(must=[models.HasIdCondition(has_id=[pid]), _version_range(lt=version)]),
                    )
                )
                for pid, body in updates
                if pid not in missing
            ]
            if ops:
                self._client.batch_update_points(alias, ops, wait=True)
            return missing

        return await self._run(run)

    async def delete_doc(
        self, tenant: str, doc_id: str, *, below_version: int | None = None, upto_version: int | None = None
    ) -> None:
        """Delete a document's points with version < below_version (leftovers) or <= upto_version (delete)."""
        must: list[Any] = [models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))]
        if below_version is not None or upto_version is not None:
            must.append(_version_range(lt=below_version, lte=upto_version))
        selector = models.FilterSelector(filter=models.Filter(must=must))
        await self._run(lambda: self._client.delete(self.alias(tenant), points_selector=selector, wait=True))

    # --- reads ---------------------------------------------------------------
    async def search(
        self, tenant: str, vector: Sequence[float], k: int, *, doc_ids: Sequence[str] | None = None
    ) -> list[Hit]:
        flt = None
        if doc_ids:
            flt = models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids)))])
        res = await self._run(
            lambda: self._client.query_points(
                self.alias(tenant), query=list(vector), limit=k, query_filter=flt, with_payload=True
            )
        )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in res.points]

    async def points(self, tenant: str) -> list[Hit]:
        """Every point of the tenant (id and payload): for audits and tests."""

        def scroll() -> list[Hit]:
            out: list[Hit] = []
            offset = None
            while True:
                batch, offset = self._client.scroll(self.alias(tenant), limit=1000, offset=offset, with_payload=True)
                out += [Hit(str(p.id), 1.0, dict(p.payload or {})) for p in batch]
                if offset is None:
                    return out

        return await self._run(scroll)

    async def close(self) -> None:
        await self._run(self._client.close)
        self._executor.shutdown(wait=False)
