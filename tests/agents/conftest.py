"""Agent tests: the real agents under Faust's ``test_context()``, with the shipped fakes.

Topic sends and table changelogs are captured instead of reaching Kafka; the vector store is
the real qdrant-client in memory, the embedder the model-free HashingEmbedder (rag_streams.testing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest

from rag_streams.testing import HashingEmbedder, MemoryAnswerCache, memory_store

from support.agent_app import (
    accepted_versions,
    applied_versions,
    chunk_slots,
    embedded_docs,
    embedded_slots,
    pipeline,
    services,
)


class Sent:
    """Messages the agents sent, per topic name."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [kw for name, kw in self.messages if name == topic]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    record = Sent()
    for topic in (pipeline.topic(t) for t in ("latest", "chunks", "chunks_bulk", "embeddings", "deadletter")):
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
