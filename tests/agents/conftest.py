"""Agent tests: the real agents under Faust's ``test_context()``, with the shipped fakes.

Topic sends and table changelogs are captured instead of reaching Kafka; the vector store is
the real qdrant-client in memory, the embedder the model-free HashingEmbedder (rag_streams.testing).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest

from rag_streams.pipeline.app import create_app
from rag_streams.settings import load_settings
from rag_streams.testing import HashingEmbedder, MemoryAnswerCache, memory_store

# The agents' app: in-memory tables, small chunks, every stage, no HTTP API.
_AGENT_ENV = {
    "RAG_TABLE_STORE": "memory://",
    "RAG_PROCESSING_GUARANTEE": "at_least_once",
    "RAG_TOPIC_PREFIX": "agenttest",
    "RAG_CHUNK_TOKENS": "20",
    "RAG_CHUNK_OVERLAP": "4",
    "RAG_EMBED_BATCH": "8",
    "RAG_EMBED_WINDOW_S": "0.1",
}
settings = load_settings({**os.environ, **_AGENT_ENV}, dotenv=None)
pipeline = create_app(settings, http=False)
app, services, names = pipeline.app, pipeline.services, pipeline.names
chunk_documents, embed_chunks, index_embeddings = (pipeline.agents[r] for r in ("chunk", "embed", "index"))
TABLES = ("accepted-versions", "applied-versions", "chunk-slots", "embedded-slots", "embedded-docs")
accepted_versions, applied_versions, chunk_slots, embedded_slots, embedded_docs = (pipeline.tables[t] for t in TABLES)


class Sent:
    """Messages the agents sent, per topic name."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [kw for name, kw in self.messages if name == topic]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    record = Sent()
    for topic in (pipeline.topic(t) for t in ("latest", "chunks", "embeddings", "deadletter")):
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
    embedder, store, cache = HashingEmbedder(), memory_store(prefix="rag"), MemoryAnswerCache(60)
    services.override(embedder=embedder, store=store, cache=cache)
    return {"embedder": embedder, "store": store, "cache": cache}


async def settle(seconds: float = 0.4) -> None:
    """Let take_events() flush its batch (RAG_EMBED_WINDOW_S is 0.1 s here)."""
    await asyncio.sleep(seconds)
