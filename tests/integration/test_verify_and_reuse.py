"""Re-ingesting unchanged text costs no embedding; `verify` finds drift and `verify --repair` mends it."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
from qdrant_edge import UpdateOperation

from rag_streams.adapters.store.base import Point
from rag_streams.adapters.store.edge import EdgeVectorStore

pytestmark = pytest.mark.integration

DOCS = ["chess-openings.md", "log-compaction.md", "circuit-breakers.md"]


def corpus() -> dict[str, str]:
    folder = resources.files("rag_streams") / "sample_corpus"
    return {name: (folder / name).read_text() for name in DOCS}


async def test_unchanged_reingest_skips_the_model_and_verify_repairs_drift(pipeline: Any) -> None:
    docs = corpus()
    async with pipeline.producer() as p:
        for doc_id, text in docs.items():
            await p.upsert("acme", doc_id, text, version=1)

    async def at_version(v: int) -> bool:
        points = await pipeline.points("acme")
        return {pt["doc_id"] for pt in points} == set(docs) and {pt["version"] for pt in points} == {v}

    await pipeline.wait_for(lambda: at_version(1), timeout=240, what="version 1 indexed")
    n_points = len(await pipeline.points("acme"))
    skipped_before = await pipeline.metric("rag_embed_skipped_unchanged_total")
    embedded_before = await pipeline.metric("rag_embed_batch_size_sum")

    # 1. The same corpus again, as version 2: every chunk is reused, the model is not run.
    async with pipeline.producer() as p:
        for doc_id, text in docs.items():
            await p.upsert("acme", doc_id, text, version=2)
    await pipeline.wait_for(lambda: at_version(2), timeout=240, what="version 2 indexed")
    assert await pipeline.metric("rag_embed_skipped_unchanged_total") - skipped_before == n_points
    assert await pipeline.metric("rag_embed_batch_size_sum") == embedded_before
    assert len(await pipeline.points("acme")) == n_points

    code, out = await pipeline.verify("acme")
    assert code == 0, out
    assert "no drift" in out

    # 2. Damage the collection behind the pipeline's back (worker stopped: it holds the store).
    pipeline.worker.stop()
    store = EdgeVectorStore.open(pipeline.settings.qdrant_location, prefix=pipeline.settings.collection_prefix)
    points = await store.points("acme")
    lost, aged = points[0], points[1]
    current = await store.current_collection("acme")
    assert current is not None
    await store._run(lambda: store._apply(current.name, UpdateOperation.delete_points([lost.id])))
    await store._run(lambda: store._apply(current.name, UpdateOperation.set_payload([aged.id], {"version": 1})))
    orphan = {**aged.payload, "doc_id": "gone.md", "version": 5}
    await store.upsert("acme", [Point("00000000-0000-4000-8000-000000000001", [0.1] * 384, orphan)], version=5)
    await store.close()

    code, out = await pipeline.verify("acme")  # no worker: verify opens the embedded store itself
    assert code == 1, out
    assert "missing 1, stale 1, orphan 1, duplicate 0" in out

    # 3. Repair through the pipeline, then verify again.
    await pipeline.restart()
    code, out = await pipeline.verify("acme", "--repair")
    assert code == 1 and "repair: replayed" in out, out

    async def repaired() -> bool:
        return (await pipeline.verify("acme"))[0] == 0

    await pipeline.wait_for(repaired, timeout=240, what="verify to report no drift after --repair")
    assert {pt["doc_id"] for pt in await pipeline.points("acme")} == set(docs)
