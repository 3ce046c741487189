"""The fallback index (rag_streams/http/fallback.py): fed by store searches, it answers the popular
questions while the store is down; bounded, least-used out first; superseded versions leave it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_streams.adapters.services import Services
from rag_streams.adapters.store.base import Hit, Point, VectorStore
from rag_streams.adapters.store.edge import EdgeVectorStore
from rag_streams.adapters.store.qdrant import QdrantVectorStore
from rag_streams.http.fallback import FallbackIndex, answer
from rag_streams.http.search import SearchRequest
from rag_streams.observability import metrics
from rag_streams.rules.ids import point_id
from rag_streams.settings import load_settings
from rag_streams.testing import HashingEmbedder

EMB = HashingEmbedder()
TEXTS = {
    "harbour": "The lighthouse keepers guard the northern harbour at night.",
    "bakery": "The bakery opens at six and sells rye bread.",
    "chess": "The queen's gambit is a chess opening.",
}


def hit(doc: str, version: int = 1, *, text: str | None = None, chunk: int = 0) -> Hit:
    text = text or TEXTS[doc]
    payload = {"doc_id": doc, "chunk_index": chunk, "version": version, "text": text, "metadata": {"k": doc}}
    return Hit(point_id("acme", doc, chunk), 0.5, payload, EMB.embed([text])[0].tolist())


def ask(index: FallbackIndex, question: str, k: int = 3, doc_ids: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return index.search("acme", EMB.embed([question])[0].tolist(), k, doc_ids)


def feed(index: FallbackIndex, hits: list[Hit], tenant: str = "acme", source: str | None = None) -> None:
    index.feed(tenant, source, hits, writes=index.writes(tenant))


def test_fed_chunks_answer_by_similarity_with_the_store_result_shape() -> None:
    index = FallbackIndex(100)
    feed(index, [hit("harbour"), hit("bakery"), hit("chess")])
    results = ask(index, "who guards the harbour at night")
    assert results[0]["doc_id"] == "harbour"
    assert set(results[0]) == {"doc_id", "chunk_index", "version", "score", "text", "metadata"}
    assert results[0]["metadata"] == {"k": "harbour"} and results[0]["score"] > results[1]["score"]
    assert [r["doc_id"] for r in ask(index, "who guards the harbour", doc_ids=("bakery",))] == ["bakery"]
    assert ask(index, "anything", k=1) and len(ask(index, "anything", k=1)) == 1
    assert index.search("other-tenant", EMB.embed(["harbour"])[0].tolist(), 3) == []
    assert len(index) == 3 and metrics.fallback_chunks._value.get() == 3


def test_full_it_drops_the_least_queried_chunks_first() -> None:
    index = FallbackIndex(10)
    popular = [hit("harbour", chunk=i) for i in range(3)]
    for _ in range(5):
        feed(index, popular)
    for i in range(20):  # questions asked once each, about chunks nobody asks for again
        feed(index, [hit("bakery", chunk=i)])
    assert len(index) <= 10
    kept = {(r["doc_id"], r["chunk_index"]) for r in ask(index, "lighthouse harbour", k=10)}
    assert {("harbour", i) for i in range(3)} <= kept  # the popular chunks stay
    for i in range(300):  # ... until others are asked for far more often: the old counts age (halve)
        feed(index, [hit("chess", chunk=i % 9)])
    assert {r["doc_id"] for r in ask(index, "lighthouse harbour", k=10)} == {"chess"}
    assert FallbackIndex(0).capacity == 0


def test_applied_writes_drop_superseded_versions_and_deletes() -> None:
    index = FallbackIndex(100)
    feed(index, [hit("harbour"), hit("bakery"), hit("chess", version=3)])
    index.written([("acme", "harbour", 2, False), ("acme", "chess", 3, False)])  # a new version; a duplicate
    assert {r["doc_id"] for r in ask(index, "x")} == {"bakery", "chess"}
    index.written([("acme", "bakery", 1, True)])  # the delete of the version held
    assert {r["doc_id"] for r in ask(index, "x")} == {"chess"}
    index.written([("other", "chess", 9, True)])  # another tenant's document of the same id
    assert {r["doc_id"] for r in ask(index, "x")} == {"chess"}


def test_a_search_that_ran_across_a_write_does_not_feed_its_hits() -> None:
    index = FallbackIndex(100)
    before = index.writes("acme")
    index.written([("acme", "harbour", 2, False)])  # applied while the search was in the store
    index.feed("acme", None, [hit("harbour", version=1)], writes=before)
    assert ask(index, "harbour") == []
    feed(index, [hit("harbour", version=2)])
    assert [(r["doc_id"], r["version"]) for r in ask(index, "harbour")] == [("harbour", 2)]


def test_a_new_model_for_the_tenant_replaces_its_chunks() -> None:
    index = FallbackIndex(100)
    feed(index, [hit("harbour"), hit("bakery")], source="model-a")
    feed(index, [hit("chess")], source="model-b")  # after a reindex: another vector space
    assert {r["doc_id"] for r in ask(index, "x")} == {"chess"} and index.source("acme") == "model-b"


async def test_the_degraded_answer_comes_from_the_index_or_is_none() -> None:
    services = Services(load_settings({}, dotenv=None), embedder=EMB)
    index = services.fallback()
    assert index is not None and index.capacity == 10_000  # on by default
    feed(index, [hit("harbour"), hit("bakery")])
    count = metrics.fallback_answers_total.labels("hit")._value.get()
    results, source = await answer(index, services, "acme", SearchRequest("who guards the harbour", k=1))
    assert source == "fallback" and [r["doc_id"] for r in results] == ["harbour"]
    assert metrics.fallback_answers_total.labels("hit")._value.get() == count + 1
    empty = metrics.fallback_answers_total.labels("empty")._value.get()
    assert await answer(index, services, "unknown", SearchRequest("harbour")) == ([], "none")
    assert await answer(None, services, "acme", SearchRequest("harbour")) == ([], "none")
    assert metrics.fallback_answers_total.labels("empty")._value.get() == empty + 2
    assert Services(load_settings({"RAG_FALLBACK_CHUNKS": "0"}, dotenv=None)).fallback() is None


@pytest.fixture(params=["edge", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    s: Any = EdgeVectorStore.open(tmp_path / "edge") if request.param == "edge" else QdrantVectorStore.in_memory()
    yield s
    await s.close()


async def test_store_searches_return_the_hits_vectors(store: VectorStore) -> None:
    """What the fallback index is fed: each hit's stored vector, unit length as the model makes it."""
    await store.ensure_tenant("acme", EMB.dim, "hashing-fake")
    vectors = EMB.embed(list(TEXTS.values()))
    points = [Point(h.id, v.tolist(), h.payload) for h, v in zip([hit(d) for d in TEXTS], vectors, strict=True)]
    await store.upsert("acme", [points[0]], version=1)
    await store.upsert("acme", [points[1]], version=1)
    hits = await store.search("acme", vectors[0].tolist(), 2)
    assert hits[0].payload["doc_id"] == "harbour" and hits[0].vector is not None
    assert np.allclose(hits[0].vector, vectors[0], atol=1e-5)
    index = FallbackIndex(10)
    feed(index, hits)
    assert ask(index, TEXTS["bakery"], k=1)[0]["doc_id"] == "bakery"
