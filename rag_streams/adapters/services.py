"""The I/O a worker uses, created on first use and replaceable by tests (fakes ship beside them)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from rag_streams.adapters.cache import AnswerCache, RedisAnswerCache
from rag_streams.adapters.embedding import Embedder, SentenceTransformerEmbedder
from rag_streams.adapters.ratelimit import UpsertLimiter
from rag_streams.adapters.store.base import Collection, VectorStore
from rag_streams.adapters.store.open import open_store
from rag_streams.errors import RagError, is_transient, retry_transient
from rag_streams.http.fallback import FallbackIndex
from rag_streams.settings import Settings, SettingsError

__all__ = ["MODEL_CACHE_S", "Services"]
T = TypeVar("T")
log = logging.getLogger(__name__)

#: How long the embed stage trusts its lookup of a tenant's model; `reindex` waits this long
#: after flipping the alias before it takes the end offsets it replays up to.
MODEL_CACHE_S = 2.0


class Services:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
        cache: AnswerCache | None = None,
    ) -> None:
        self.settings = settings
        self._cache = cache
        #: one embedder per model source; None is RAG_EMBED_MODEL (the chunker's tokenizer too)
        self._embedders: dict[str | None, Embedder] = {} if embedder is None else {None: embedder}
        self._store = store
        self._lock = asyncio.Lock()
        self._models: dict[str, tuple[float, str | None]] = {}
        self._lookup_failed: set[str] = set()
        self.limiter = UpsertLimiter(settings.upsert_rate, settings.tenant_upsert_rate)
        #: False in a worker without the index role on embedded Qdrant (the index worker holds the
        #: store's lock): tenants' models are then asked of the index worker's HTTP API
        self.owns_store = True
        self._model_thread: ThreadPoolExecutor | None = None
        self._preload: Future[Embedder] | None = None  # RAG_EMBED_MODEL loading since the worker started
        #: the most-queried chunks, to answer while the store is down (None: RAG_FALLBACK_CHUNKS=0)
        self._fallback = FallbackIndex(settings.fallback_chunks) if settings.fallback_chunks else None

    async def run_model(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the embed stage's model work on one dedicated thread, off the event loop: torch keeps
        one pool of intra-op threads per calling thread, and asyncio.to_thread's rotating threads
        each grew their own (4 busy threads and a larger peak RSS for a 2-thread model)."""
        if self._model_thread is None:
            self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="rag-model")
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, partial(fn, *args))

    def override(
        self, *, embedder: Embedder | None = None, store: VectorStore | None = None, cache: AnswerCache | None = None
    ) -> None:
        if embedder is not None:
            self._embedders[None] = embedder
        if store is not None:
            self._store = store
        if cache is not None:
            self._cache = cache

    def cache(self) -> AnswerCache | None:
        """The search answer cache; None when RAG_REDIS_URL is empty."""
        if self._cache is None and self.settings.redis_url:
            s = self.settings
            self._cache = RedisAnswerCache(s.redis_url, s.cache_ttl, namespace=f"rag:{s.app_id}")
        return self._cache

    def fallback(self) -> FallbackIndex | None:
        """The fallback index of this process (rag_streams/http/fallback.py); None when off."""
        return self._fallback

    def _load(self, model: str | None) -> Embedder:
        s = self.settings
        return SentenceTransformerEmbedder(model or s.embed_model, device=s.embed_device, batch_size=s.embed_batch)

    def preload_model(self) -> Future[Embedder]:
        """Start loading RAG_EMBED_MODEL on a background thread now (at the worker's start: see
        adapters/model_preload.py); the first :meth:`embedder` call waits for what is left of it."""
        if self._preload is None:
            from rag_streams.adapters.model_preload import start_preload

            self._preload = start_preload(partial(self._load, None))
        return self._preload

    async def embedder(self, model: str | None = None) -> Embedder:
        """The embedder of a model source (a collection's ``source``); None = RAG_EMBED_MODEL."""
        key = None if model == self.settings.embed_model else model
        if key not in self._embedders:
            async with self._lock:
                if key not in self._embedders:
                    s = self.settings
                    if key is None and self._preload is not None:
                        emb = await asyncio.wrap_future(self._preload)
                    else:
                        emb = await asyncio.to_thread(self._load, key)
                    if s.chunk_tokens > emb.max_tokens:
                        raise SettingsError(
                            f"RAG_CHUNK_TOKENS: {s.chunk_tokens} is over the model's limit of {emb.max_tokens} tokens"
                        )
                    log.info("model %s loaded on %s (dim %d)", emb.model_name, s.embed_device, emb.dim)
                    self._embedders[key] = emb
        return self._embedders[key]

    async def tenant_model(self, tenant: str) -> str | None:
        """The model source of the tenant's current collection (None: RAG_EMBED_MODEL or no collection
        yet), looked up at most every MODEL_CACHE_S seconds. On a failed lookup the last answer stays."""
        now = time.monotonic()
        cached = self._models.get(tenant)
        if cached is not None and now - cached[0] < MODEL_CACHE_S:
            return cached[1]
        source = cached[1] if cached else None
        try:
            current = await retry_transient(self._current_collection, tenant, what="model lookup", attempts=3)
            source = current.source if current else None
        except Exception as exc:
            if not (is_transient(exc) or isinstance(exc, (OSError, RagError))):
                raise
            if tenant not in self._lookup_failed:  # once per tenant, not every few seconds
                self._lookup_failed.add(tenant)
                log.warning("model lookup for %s failed (%s); embedding with %s", tenant, exc, source or "default")
        self._models[tenant] = (now, source)
        return source

    async def _current_collection(self, tenant: str) -> Collection | None:
        if self.owns_store:
            return await self.store().current_collection(tenant)
        if not self.settings.api_url:  # this worker's own address: it cannot answer
            raise RagError("set RAG_API_URL to the index worker's API to follow each tenant's model")
        from rag_streams.adapters.reindex_remote import RemoteCollections

        keys = {t: k for k, t in self.settings.api_key_tenants().items()}
        remote = RemoteCollections(self.settings, keys.get(tenant))
        try:
            return await remote.current_collection(tenant)
        finally:
            await remote.close()

    async def close(self) -> None:
        """Release what the worker opened: the vector store (the embedded store's files and lock,
        or the server client), the answer cache's connections and the model thread. Called once the
        app's agents have stopped (see commands.worker.faust_worker); the next use opens them again."""
        store, self._store = self._store, None
        cache, self._cache = self._cache, None
        thread, self._model_thread = self._model_thread, None
        for name, resource in (("vector store", store), ("answer cache", cache)):
            if resource is None:
                continue
            try:
                await resource.close()
            except Exception as exc:  # noqa: BLE001 - at shutdown: log it, close the rest
                log.warning("closing the %s failed: %s: %s", name, type(exc).__name__, exc)
        if thread is not None:
            thread.shutdown(wait=False)
        log.info("services closed")

    def store(self) -> VectorStore:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store
