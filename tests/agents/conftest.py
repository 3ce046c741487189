"""Agent tests: the real agents under Faust's ``test_context()``, with the shipped fakes.

Topic sends and table changelogs are captured instead of reaching Kafka; the vector store is
the real qdrant-client in memory, the embedder the model-free HashingEmbedder.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest

# The Faust app reads its settings when first imported: in-memory tables, small chunks. The
# variables are removed again right after, so they never reach other tests' worker processes.
_AGENT_ENV = {
    "RAG_TABLE_STORE": "memory://",
    "RAG_PROCESSING_GUARANTEE": "at_least_once",
    "RAG_TOPIC_PREFIX": "agenttest",
    "RAG_CHUNK_TOKENS": "20",
    "RAG_CHUNK_OVERLAP": "4",
    "RAG_EMBED_BATCH": "8",
    "RAG_EMBED_WINDOW_S": "0.1",
}
_saved = {k: os.environ.get(k) for k in _AGENT_ENV}
os.environ.update(_AGENT_ENV)

from rag_streams.app import chunks_topic, deadletter_topic, embeddings_topic, latest_topic, services  # noqa: E402
from rag_streams.cache import MemoryAnswerCache  # noqa: E402
from rag_streams.embedding import HashingEmbedder  # noqa: E402
from rag_streams.tables.accepted_versions import accepted_versions  # noqa: E402
from rag_streams.tables.applied_versions import applied_versions, chunk_slots  # noqa: E402
from rag_streams.tables.embedded_versions import embedded_docs, embedded_slots  # noqa: E402
from rag_streams.vectorstore import QdrantVectorStore  # noqa: E402

for _k, _v in _saved.items():
    if _v is None:
        os.environ.pop(_k, None)
    else:
        os.environ[_k] = _v


class Sent:
    """Messages the agents sent, per topic name."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [kw for name, kw in self.messages if name == topic]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    record = Sent()
    for topic in (latest_topic, chunks_topic, embeddings_topic, deadletter_topic):
        name = topic.get_topic_name()

        async def send(_name: str = name, **kwargs: Any) -> None:
            record.messages.append((_name, kwargs))

        monkeypatch.setattr(topic, "send", AsyncMock(side_effect=send))
    for table in (accepted_versions, applied_versions, chunk_slots, embedded_slots, embedded_docs):
        monkeypatch.setattr(table, "send_changelog", Mock())
        table.data.clear()
    yield record


@pytest.fixture
def fakes() -> dict[str, Any]:
    embedder, store, cache = HashingEmbedder(), QdrantVectorStore.in_memory(prefix="rag"), MemoryAnswerCache(60)
    services.override(embedder=embedder, store=store, cache=cache)
    return {"embedder": embedder, "store": store, "cache": cache}


async def settle(seconds: float = 0.4) -> None:
    """Let take_events() flush its batch (RAG_EMBED_WINDOW_S is 0.1 s here)."""
    await asyncio.sleep(seconds)
