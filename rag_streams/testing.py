"""The fakes tests use, in one place: a model-free embedder, an in-memory answer cache and an
in-memory vector store. They keep the real ones' semantics, so tests of the stages, the API and the
commands stay meaningful without the model, Redis or a store on disk."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from rag_streams.observability import metrics
from rag_streams.rules.chunking import Span, WhitespaceTokenizer

if TYPE_CHECKING:
    from rag_streams.adapters.store.qdrant import QdrantVectorStore

__all__ = ["HashingEmbedder", "MemoryAnswerCache", "memory_store"]


class HashingEmbedder:
    """A deterministic, model-free embedder for unit tests: hashed bag of lower-cased words.

    Texts sharing words get similar vectors, so search tests stay meaningful.
    """

    _WORD = re.compile(r"\w+")

    def __init__(self, dim: int = 384, max_tokens: int = 254) -> None:
        self.model_name = "hashing-fake"
        self.dim = dim
        self.max_tokens = max_tokens
        self.calls: list[int] = []  # batch sizes, for tests
        self._tokenizer = WhitespaceTokenizer()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in self._WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out

    def token_spans(self, text: str) -> list[Span]:
        return self._tokenizer.token_spans(text)


class MemoryAnswerCache:
    """The fake: same semantics in a dict, with an injectable clock for the TTL."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self.generations: dict[str, int] = {}
        self.answers: dict[tuple[str, int, str], tuple[float, bytes]] = {}

    async def get(self, tenant: str, key: str) -> bytes | None:
        entry = self.answers.get((tenant, self.generations.get(tenant, 0), key))
        if entry is None or entry[0] <= self.clock():
            metrics.cache_misses_total.inc()
            return None
        metrics.cache_hits_total.inc()
        return entry[1]

    async def put(self, tenant: str, key: str, answer: bytes) -> None:
        self.answers[(tenant, self.generations.get(tenant, 0), key)] = (self.clock() + self.ttl_s, answer)

    async def written(self, tenants: Iterable[str]) -> None:
        for tenant in tenants:
            self.generations[tenant] = self.generations.get(tenant, 0) + 1

    async def close(self) -> None:
        pass


def memory_store(prefix: str = "rag") -> QdrantVectorStore:
    """A vector store in memory: qdrant-client's local mode (the real filters, no files)."""
    from rag_streams.adapters.store.qdrant import QdrantVectorStore

    return QdrantVectorStore.in_memory(prefix=prefix)
