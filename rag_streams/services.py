"""The I/O a worker uses, created on first use and replaceable by tests (fakes ship beside them)."""

from __future__ import annotations

import asyncio
import importlib
import logging

from rag_streams.embedding import Embedder, SentenceTransformerEmbedder
from rag_streams.ratelimit import UpsertLimiter
from rag_streams.settings import Settings, SettingsError
from rag_streams.vectorstore import QdrantVectorStore, VectorStore

__all__ = ["Services"]
log = logging.getLogger(__name__)


class Services:
    def __init__(
        self, settings: Settings, *, embedder: Embedder | None = None, store: VectorStore | None = None
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._store = store
        self._lock = asyncio.Lock()
        self.limiter = UpsertLimiter(settings.upsert_rate, settings.tenant_upsert_rate)

    def override(self, *, embedder: Embedder | None = None, store: VectorStore | None = None) -> None:
        if embedder is not None:
            self._embedder = embedder
        if store is not None:
            self._store = store

    async def embedder(self) -> Embedder:
        if self._embedder is None:
            async with self._lock:
                if self._embedder is None:
                    s = self.settings
                    emb = await asyncio.to_thread(
                        SentenceTransformerEmbedder, s.embed_model, device=s.embed_device, batch_size=s.embed_batch
                    )
                    if s.chunk_tokens > emb.max_tokens:
                        raise SettingsError(
                            f"RAG_CHUNK_TOKENS: {s.chunk_tokens} is over the model's limit of {emb.max_tokens} tokens"
                        )
                    log.info("model %s loaded on %s (dim %d)", emb.model_name, s.embed_device, emb.dim)
                    self._embedder = emb
        return self._embedder

    def store(self) -> VectorStore:
        if self._store is None and self.settings.vector_store is not None:
            module, _, name = self.settings.vector_store.partition(":")
            self._store = getattr(importlib.import_module(module), name)(self.settings)
        if self._store is None:
            s = self.settings
            s.qdrant_location.mkdir(parents=True, exist_ok=True)
            self._store = QdrantVectorStore.connect(
                url=s.qdrant_url, path=str(s.qdrant_location), api_key=s.qdrant_api_key, prefix=s.collection_prefix
            )
        return self._store
