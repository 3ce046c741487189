"""A tenant's collections in Qdrant: the alias ``{prefix}_{tenant}`` and the physical generations
``{prefix}_{tenant}__v{n}`` it points at. The base of ``QdrantVectorStore`` (points are in
``vectorstore.py``): the first collection, the list, the next generation, the alias flip and the
drop of an old generation (reindex). The client is synchronous; every call runs on one dedicated
thread, off the event loop (embedded Qdrant is not safe for concurrent use).
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from qdrant_client import QdrantClient, models

from rag_streams.adapters.store.base import Collection, own_generation
from rag_streams.errors import BadInput
from rag_streams.rules.ids import collection_alias, collection_name

__all__ = ["QdrantCollections"]

T = TypeVar("T")


class QdrantCollections:
    """A tenant's alias and generations on qdrant-client."""

    def __init__(self, client: QdrantClient, *, prefix: str = "rag", quantization: str = "none") -> None:
        self._client = client
        self._prefix = prefix
        self._quantization = quantization  # "int8": new collections get scalar quantization (RAG_QUANTIZATION)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant")
        self._known: set[str] = set()

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

    def _create_collection(self, name: str, dim: int, model: str, source: str | None = None) -> None:
        meta: dict[str, Any] = {"model": model, "dim": dim}
        if source is not None:
            meta["source"] = source
        quantization = None
        if self._quantization == "int8":  # Qdrant searches the int8 copy first and rescores with the originals
            scalar = models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
            quantization = models.ScalarQuantization(scalar=scalar)
        self._client.create_collection(
            name,
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            quantization_config=quantization,
            metadata=meta,
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

    def _target(self, tenant: str, collection: str | None) -> str:
        """Where a write goes: the alias, or one of the tenant's own generations (never another's)."""
        if collection is None:
            return self.alias(tenant)
        return own_generation(self.alias(tenant), tenant, collection)

    def _describe(self, name: str, generation: int, aliased: bool) -> Collection:
        return Collection.from_meta(name, generation, self._client.get_collection(name).config.metadata or {}, aliased)

    async def collections(self, tenant: str) -> list[Collection]:
        """The tenant's physical collections, oldest generation first."""

        def run() -> list[Collection]:
            current = self._alias_target(self.alias(tenant))
            names = [(collection_name(self._prefix, tenant, gen), gen) for gen in self._generations(tenant)]
            return [self._describe(name, gen, name == current) for name, gen in names]

        return await self._run(run)

    async def current_collection(self, tenant: str) -> Collection | None:
        """The collection the tenant's alias points at (its model embeds queries and live chunks)."""

        def run() -> Collection | None:
            name = self._alias_target(self.alias(tenant))
            if name is None:
                return None
            match = re.search(r"__v(\d+)$", name)
            return self._describe(name, int(match.group(1)) if match else 0, True)

        return await self._run(run)

    async def create_generation(
        self, tenant: str, generation: int, dim: int, model: str, source: str | None = None
    ) -> Collection:
        """Create ``{alias}__v{generation}`` (not aliased) if missing; return what it holds."""
        name = collection_name(self._prefix, tenant, generation)

        def run() -> Collection:
            if not self._client.collection_exists(name):
                self._create_collection(name, dim, model, source)
            return self._describe(name, generation, self._alias_target(self.alias(tenant)) == name)

        return await self._run(run)

    async def flip_alias(self, tenant: str, collection: str) -> None:
        """Point the tenant's alias at ``collection`` in one atomic alias update (delete + create)."""
        alias, name = self.alias(tenant), self._target(tenant, collection)

        def run() -> None:
            if not self._client.collection_exists(name):
                raise BadInput(f"collection {name!r} does not exist")
            ops: list[Any] = []
            if self._alias_target(alias) is not None:
                ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
            ops.append(
                models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=name, alias_name=alias))
            )
            self._client.update_collection_aliases(change_aliases_operations=ops)

        await self._run(run)

    async def drop_collection(self, tenant: str, collection: str) -> None:
        """Delete one of the tenant's generations; never the one its alias points at."""
        name = self._target(tenant, collection)

        def run() -> None:
            if self._alias_target(self.alias(tenant)) == name:
                raise BadInput(f"{name!r} is the tenant's current collection")
            self._client.delete_collection(name)

        await self._run(run)

    async def close(self) -> None:
        await self._run(self._client.close)
        self._executor.shutdown(wait=False)
