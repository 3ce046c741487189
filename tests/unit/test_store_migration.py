"""From qdrant-client's local mode to the Edge store: detected at start, copied by migrate-store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rag_streams.adapters.store.base import Point
from rag_streams.adapters.store.edge import EdgeVectorStore
from rag_streams.adapters.store.edge_collections import StoreLocked
from rag_streams.adapters.store.open import LegacyStoreFound, legacy_local_store, migrate_local_store, open_store
from rag_streams.adapters.store.qdrant import QdrantVectorStore
from rag_streams.rules.ids import point_id
from rag_streams.settings import load_settings


def settings_for(tmp_path: Path) -> object:
    return load_settings({"RAG_DATA_DIR": str(tmp_path)}, dotenv=None)


async def _write_local_mode(folder: Path) -> list[Point]:
    """A store as the previous release wrote it: qdrant-client local mode, two generations, the alias on v2."""
    old = QdrantVectorStore.connect(url=None, path=str(folder))
    points = [
        Point(
            point_id("acme", "a.md", i), [1.0, float(i), 0.0, 0.5], {"doc_id": "a.md", "version": 3, "chunk_index": i}
        )
        for i in range(3)
    ]
    try:
        await old.ensure_tenant("acme", 4, "old-model")
        await old.create_generation("acme", 2, 4, "new-model", "/models/new")
        await old.upsert("acme", points[:1], version=3)
        await old.upsert("acme", points, version=3, collection="rag_acme__v2")
        await old.flip_alias("acme", "rag_acme__v2")
    finally:
        await old.close()
    return points


async def test_a_local_mode_store_is_refused_until_migrated_then_copied_with_its_vectors(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    points = await _write_local_mode(tmp_path / "qdrant")
    assert legacy_local_store(settings) == tmp_path / "qdrant"  # type: ignore[arg-type]
    with pytest.raises(LegacyStoreFound, match="rag-streams migrate-store"):
        open_store(settings)  # type: ignore[arg-type]

    lines: list[str] = []
    assert migrate_local_store(settings, out=lines.append) == 4  # type: ignore[arg-type]
    assert not (tmp_path / "qdrant").exists() and (tmp_path / "qdrant.migrated").is_dir()
    assert legacy_local_store(settings) is None  # type: ignore[arg-type]

    store = open_store(settings)  # type: ignore[arg-type]
    assert isinstance(store, EdgeVectorStore)
    try:
        collections = await store.collections("acme")
        assert [(c.name, c.model, c.source, c.aliased) for c in collections] == [
            ("rag_acme__v1", "old-model", None, False),
            ("rag_acme__v2", "new-model", "/models/new", True),
        ]
        hits = await store.search("acme", [1.0, 2.0, 0.0, 0.5], 3)
        assert hits[0].id == points[2].id and hits[0].score == pytest.approx(1.0, abs=1e-5)  # vectors copied
        assert sorted(h.payload["chunk_index"] for h in await store.points("acme")) == [0, 1, 2]
    finally:
        await store.close()
    assert migrate_local_store(settings, out=lines.append) == 0  # nothing left to do: says so
    assert "nothing to migrate" in lines[-1]


def test_the_worker_refuses_to_start_on_a_local_mode_store(tmp_path: Path) -> None:
    import subprocess
    import sys

    asyncio.run(_write_local_mode(tmp_path / "qdrant"))
    env = {"RAG_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "rag_streams.cli", "worker", "--role", "index"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "old embedded format" in line and "rag-streams migrate-store" in line


async def test_a_second_process_cannot_open_the_same_edge_store(tmp_path: Path) -> None:
    first = EdgeVectorStore.open(tmp_path / "edge")
    try:
        with pytest.raises(StoreLocked, match="open in another process"):
            EdgeVectorStore.open(tmp_path / "edge")
    finally:
        await first.close()
    EdgeVectorStore.open(tmp_path / "edge").close_now()  # free again once closed
