"""RAG_QUANTIZATION=int8: new collections are created with int8 scalar quantization and still answer
searches right; collections that exist keep the configuration they were created with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_streams.adapters.store.base import Point
from rag_streams.adapters.store.edge import EdgeVectorStore
from rag_streams.adapters.store.qdrant import QdrantVectorStore
from rag_streams.bench.vectors import exact_top_k
from rag_streams.settings import load_settings

DIM = 16


def points(vectors: np.ndarray) -> list[Point]:
    return [
        Point(f"00000000-0000-4000-8000-{i:012d}", v.tolist(), {"tenant_id": "acme", "doc_id": f"d{i}", "version": 1})
        for i, v in enumerate(vectors)
    ]


def shard_config(root: Path, collection: str) -> dict[str, Any]:
    meta = json.loads((root / collection / "collection.json").read_text())
    return dict(json.loads((root / collection / meta["shard"] / "edge_config.json").read_text()))


def test_the_setting_defaults_to_none_and_takes_int8() -> None:
    assert load_settings({}, dotenv=None).quantization == "none"
    assert load_settings({"RAG_QUANTIZATION": "int8"}, dotenv=None).quantization == "int8"


async def test_an_int8_edge_collection_is_quantized_and_searches_right(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = EdgeVectorStore.open(tmp_path / "edge", quantization="int8", segment_index_kb=1)
    try:
        await store.ensure_tenant("acme", DIM, "m")
        await store.upsert("acme", points(vectors), version=1)
        await store.build_indexes()  # HNSW and the int8 copy (a child process optimizes the shard)
        config = shard_config(tmp_path / "edge", "rag_acme__v1")
        assert config["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}
        assert config["max_search_threads"] == 1  # kept through the build: searches stay on the store's thread
        assert (await store.current_collection("acme")) is not None
        assert store._open["rag_acme__v1"].shard.info().indexed_vectors_count == 400
        queries = rng.standard_normal((20, DIM)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        for query, exact in zip(queries, exact_top_k(vectors, queries, 3), strict=True):
            hits = await store.search("acme", query.tolist(), 3)
            assert [int(h.id[-12:]) for h in hits] == exact
            # rescored with the original vectors: the scores are the exact cosines, not the int8 estimates
            assert [h.score for h in hits] == pytest.approx([float(vectors[i] @ query) for i in exact], abs=1e-5)
    finally:
        await store.close()


async def test_existing_edge_collections_keep_their_configuration(tmp_path: Path) -> None:
    plain = EdgeVectorStore.open(tmp_path / "edge")
    await plain.ensure_tenant("acme", DIM, "m")
    await plain.close()
    quantizing = EdgeVectorStore.open(tmp_path / "edge", quantization="int8")
    try:
        await quantizing.upsert("acme", points(np.eye(DIM, dtype=np.float32)[:2]), version=1)
        await quantizing.create_generation("acme", 2, DIM, "m")  # a reindex's next generation
        assert (await quantizing.search("acme", np.eye(DIM)[1].tolist(), 1))[0].payload["doc_id"] == "d1"
    finally:
        await quantizing.close()
    assert "quantization_config" not in shard_config(tmp_path / "edge", "rag_acme__v1")
    assert "scalar" in shard_config(tmp_path / "edge", "rag_acme__v2")["quantization_config"]


@pytest.mark.parametrize("quantization", ["none", "int8"])
async def test_the_server_store_asks_qdrant_for_int8_collections(quantization: str) -> None:
    """qdrant-client's in-memory mode ignores quantization, so the request itself is checked."""
    store = QdrantVectorStore.in_memory(quantization=quantization)
    asked: list[dict[str, Any]] = []
    create = store._client.create_collection
    store._client.create_collection = lambda name, **kw: asked.append(kw) or create(name, **kw)  # type: ignore[method-assign]
    try:
        await store.ensure_tenant("acme", DIM, "m")
        await store.upsert("acme", points(np.eye(DIM, dtype=np.float32)[:2]), version=1)
        assert (await store.search("acme", np.eye(DIM)[0].tolist(), 1))[0].payload["doc_id"] == "d0"
    finally:
        await store.close()
    (kwargs,) = asked
    scalar = getattr(kwargs["quantization_config"], "scalar", None)
    if quantization == "none":
        assert kwargs["quantization_config"] is None
    else:
        assert scalar is not None and scalar.type.value == "int8" and scalar.always_ram is True
