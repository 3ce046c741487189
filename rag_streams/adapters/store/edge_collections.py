"""A tenant's collections in the embedded Qdrant Edge engine: files, alias, generations.

Layout under the store's root (``RAG_QDRANT_PATH``, default ``{RAG_DATA_DIR}/qdrant-edge``)::

    {prefix}_{tenant}.alias            the name of the aliased generation (replaced atomically)
    {prefix}_{tenant}__v{n}/
        collection.json                model, dim, source, and which shard directory is live
        shard-{k}/                     one Edge shard (segments + WAL)

HNSW indexes are built beside the worker (``edge_shards.py``). Every Edge call runs on one
dedicated thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeVectorParams,
    PayloadSchemaType,
    ScalarQuantizationConfig,
    ScalarType,
    UpdateOperation,
)
from qdrant_edge import Point as EdgePoint

from rag_streams.adapters.store.base import Collection, own_generation
from rag_streams.adapters.store.edge_shards import META, EdgeIndexBuilds, StoreLocked, _Open, _write_atomically
from rag_streams.errors import BadInput
from rag_streams.rules.ids import collection_alias, collection_name

__all__ = ["EdgeCollections", "StoreLocked"]

log = logging.getLogger(__name__)
T = TypeVar("T")
INDEXED_FIELDS = {
    "doc_id": PayloadSchemaType.Keyword,
    "version": PayloadSchemaType.Integer,
    "tenant_id": PayloadSchemaType.Keyword,
}


class EdgeCollections(EdgeIndexBuilds):
    """A tenant's alias and generations on Qdrant Edge shards in one directory."""

    def __init__(
        self,
        root: Path | str,
        *,
        prefix: str = "rag",
        index_threshold: int = 20_000,
        segment_index_kb: int | None = None,
        quantization: str = "none",
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.root / ".lock", "a")  # noqa: SIM115 - held for the store's lifetime
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StoreLocked(
                f"the embedded store {self.root} is open in another process (the index worker holds it; "
                "ask it through the API, or stop it first)"
            ) from None
        self._prefix = prefix
        self._index_threshold = index_threshold
        #: Edge's optimizer indexes (HNSW) a segment once its vectors exceed this many KB (None: Edge's default)
        self._segment_index_kb = segment_index_kb
        #: "int8": collections created from now on keep int8 scalar-quantized vectors too (RAG_QUANTIZATION)
        self._quantization = quantization
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-edge")
        self._open: dict[str, _Open] = {}
        self._aliases: dict[str, str | None] = {}  # alias -> the generation its file names
        self._closed = False

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def alias(self, tenant: str) -> str:
        return collection_alias(self._prefix, tenant)

    # --- files (on the store's thread) ----------------------------------------
    def _alias_file(self, alias: str) -> Path:
        return self.root / f"{alias}.alias"

    def _alias_target(self, alias: str) -> str | None:
        """Read once, then kept: this process holds the store's lock, so only it changes the file."""
        if alias not in self._aliases:
            try:
                self._aliases[alias] = self._alias_file(alias).read_text().strip() or None
            except FileNotFoundError:
                self._aliases[alias] = None
        return self._aliases[alias]

    def _set_alias(self, alias: str, name: str) -> None:
        _write_atomically(self._alias_file(alias), name)
        self._aliases[alias] = name

    def _meta(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.root / name / META).read_text()))
        except FileNotFoundError:
            return None

    def _generations(self, tenant: str) -> list[int]:
        pattern = re.compile(re.escape(self.alias(tenant)) + r"__v(\d+)")
        return sorted(
            int(m.group(1)) for p in self.root.iterdir() if (m := pattern.fullmatch(p.name)) and (p / META).exists()
        )

    def _create_collection(self, name: str, dim: int, model: str, source: str | None = None) -> None:
        folder = self.root / name
        if folder.exists():  # a create that crashed before writing collection.json
            shutil.rmtree(folder)
        optimizers = EdgeOptimizersConfig(indexing_threshold=self._segment_index_kb)
        quantized = self._quantization == "int8"
        config = EdgeConfig(
            vectors=EdgeVectorParams(size=dim, distance=Distance.Cosine),
            optimizers=optimizers,
            # a search runs on the store's own thread, not handed to Edge's search pool and back: on
            # 2 busy cores that hop was most of the p99 (100k points: 3.2-10.9 ms, 0.5-4.9 ms without)
            max_search_threads=1,
            # built with the HNSW index (optimize); searches rescore the candidates with the originals
            quantization_config=ScalarQuantizationConfig(ScalarType.Int8, quantile=0.99, always_ram=True)
            if quantized
            else None,
        )
        shard = EdgeShard.create(str(folder / "shard-1"), config)
        for key, schema in INDEXED_FIELDS.items():
            shard.update(UpdateOperation.create_field_index(key, schema))
        meta: dict[str, Any] = {"model": model, "dim": dim, "shard": "shard-1"}
        if quantized:
            meta["quantization"] = "int8"
        if source is not None:
            meta["source"] = source
        _write_atomically(folder / META, json.dumps(meta))
        self._open[name] = _Open(shard, "shard-1")

    def _handle(self, name: str) -> _Open:
        """The open shard of collection ``name`` (loaded on first use)."""
        handle = self._open.get(name)
        if handle is not None:
            return handle
        meta = self._meta(name)
        if meta is None:
            raise BadInput(f"collection {name!r} does not exist")
        folder = self.root / name
        for stale in folder.glob("shard-*"):  # a copy an index build left behind when the worker stopped
            if stale.name != meta["shard"]:
                shutil.rmtree(stale, ignore_errors=True)
        handle = _Open(EdgeShard.load(str(folder / meta["shard"])), meta["shard"])
        self._open[name] = handle
        return handle

    def _apply(self, name: str, operation: UpdateOperation, *, points: int = 0) -> None:
        handle = self._handle(name)
        handle.shard.update(operation)
        handle.unindexed += points
        if handle.journal is not None:
            handle.journal.append(operation)

    def _resolve(self, tenant: str, collection: str | None) -> str:
        """The physical collection a call reads or writes: the alias's target or one of the tenant's own."""
        if collection is None:
            name = self._alias_target(self.alias(tenant))
            if name is None:
                raise BadInput(f"tenant {tenant!r} has no collection yet")
            return name
        return own_generation(self.alias(tenant), tenant, collection)

    def _describe(self, name: str, generation: int, aliased: bool) -> Collection:
        return Collection.from_meta(name, generation, self._meta(name) or {}, aliased)

    # --- collections -----------------------------------------------------------
    async def ensure_tenant(self, tenant: str, dim: int, model: str) -> str:
        """Create the tenant's first collection and alias if missing; return the alias."""
        alias = self.alias(tenant)

        def create() -> None:
            if self._alias_target(alias) is None:
                name = collection_name(self._prefix, tenant, max(self._generations(tenant), default=0) + 1)
                self._create_collection(name, dim, model)
                self._set_alias(alias, name)

        if self._alias_target(alias) is None:
            await self._run(create)
        return alias

    async def has_tenant(self, tenant: str) -> bool:
        return self._alias_target(self.alias(tenant)) is not None

    async def collections(self, tenant: str) -> list[Collection]:
        """The tenant's physical collections, oldest generation first."""

        def run() -> list[Collection]:
            current = self._alias_target(self.alias(tenant))
            names = [(collection_name(self._prefix, tenant, gen), gen) for gen in self._generations(tenant)]
            return [self._describe(name, gen, name == current) for name, gen in names]

        return await self._run(run)

    async def current_collection(self, tenant: str) -> Collection | None:
        name = self._alias_target(self.alias(tenant))
        if name is None:
            return None
        match = re.search(r"__v(\d+)$", name)
        return await self._run(lambda: self._describe(name, int(match.group(1)) if match else 0, True))

    async def create_generation(
        self, tenant: str, generation: int, dim: int, model: str, source: str | None = None
    ) -> Collection:
        """Create ``{alias}__v{generation}`` (not aliased) if missing; return what it holds."""
        name = collection_name(self._prefix, tenant, generation)

        def run() -> Collection:
            if self._meta(name) is None:
                self._create_collection(name, dim, model, source)
            return self._describe(name, generation, self._alias_target(self.alias(tenant)) == name)

        return await self._run(run)

    async def flip_alias(self, tenant: str, collection: str) -> None:
        """Point the tenant's alias at ``collection``: one atomic file replace."""
        alias, name = self.alias(tenant), self._resolve(tenant, collection)

        def run() -> None:
            if self._meta(name) is None:
                raise BadInput(f"collection {name!r} does not exist")
            self._set_alias(alias, name)

        await self._run(run)

    async def drop_collection(self, tenant: str, collection: str) -> None:
        """Delete one of the tenant's generations; never the one its alias points at."""
        name = self._resolve(tenant, collection)
        handle = self._open.get(name)
        if handle is not None and handle.build is not None:
            handle.build.cancel()

        def run() -> None:
            if self._alias_target(self.alias(tenant)) == name:
                raise BadInput(f"{name!r} is the tenant's current collection")
            dropped = self._open.pop(name, None)
            if dropped is not None:
                dropped.shard.close()
            shutil.rmtree(self.root / name, ignore_errors=True)

        await self._run(run)

    def copy_in(self, tenant: str, generation: int, dim: int, model: str, source: str | None, points: list[Any]) -> int:
        """Create generation ``generation`` if missing and write ``points`` into it as they are."""
        name = collection_name(self._prefix, tenant, generation)
        if self._meta(name) is None:
            self._create_collection(name, dim, model, source)
        for start in range(0, len(points), 1000):
            batch = [EdgePoint(p.id, list(p.vector), p.payload) for p in points[start : start + 1000]]
            self._apply(name, UpdateOperation.upsert_points(batch), points=len(batch))
        return len(points)

    def set_alias(self, tenant: str, name: str) -> None:
        self._set_alias(self.alias(tenant), name)

    def close_now(self) -> None:
        for handle in self._open.values():
            handle.shard.close()
        self._open.clear()
        self._executor.shutdown(wait=False)
        self._lock.close()

    async def close(self) -> None:
        self._closed = True
        builds = [h.build for h in self._open.values() if h.build is not None]
        for build in builds:
            build.cancel()
        await asyncio.gather(*builds, return_exceptions=True)

        def run() -> None:
            for handle in self._open.values():
                handle.shard.close()
            self._open.clear()

        await self._run(run)
        self._executor.shutdown(wait=False)
        self._lock.close()
