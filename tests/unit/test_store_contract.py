"""The store contract: one suite, every ``VectorStore`` implementation.

- ``edge``: the embedded default, Qdrant Edge shards in a temporary directory;
- ``memory``: qdrant-client's in-memory mode (the unit-test double);
- ``server``: a Qdrant server, when ``RAG_TEST_QDRANT_URL`` is set (none can be run on the
  project's CI machine, so there it is not collected at all rather than skipped).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rag_streams.adapters.store.base import Collection, Point, VectorStore
from rag_streams.adapters.store.edge import EdgeVectorStore
from rag_streams.adapters.store.qdrant import QdrantVectorStore
from rag_streams.errors import BadInput
from rag_streams.rules.ids import point_id

DIM = 4
KINDS = ["edge", "memory", *(["server"] if os.environ.get("RAG_TEST_QDRANT_URL") else [])]


def open_store(kind: str, folder: Path, prefix: str = "rag") -> Any:
    if kind == "edge":
        return EdgeVectorStore.open(folder / "edge", prefix=prefix)
    if kind == "memory":
        return QdrantVectorStore.in_memory(prefix=prefix)
    # a test server: every collection and alias of the prefix is removed first
    store = QdrantVectorStore.connect(url=os.environ["RAG_TEST_QDRANT_URL"], path=None, prefix=prefix)
    client = store._client
    for a in client.get_aliases().aliases:
        if a.alias_name.startswith(f"{prefix}_"):
            client.delete_alias(a.alias_name) if hasattr(client, "delete_alias") else None
    for c in client.get_collections().collections:
        if c.name.startswith(f"{prefix}_"):
            client.delete_collection(c.name)
    return store


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    s = open_store(request.param, tmp_path)
    yield s
    await s.close()


def point(doc: str, index: int, version: int, vector: list[float], *, tenant: str = "acme") -> Point:
    return Point(
        id=point_id(tenant, doc, index),
        vector=vector,
        payload={
            "tenant_id": tenant,
            "doc_id": doc,
            "chunk_index": index,
            "version": version,
            "text": f"{doc}#{index}@{version}",
        },
    )


def by_slot(hits: list) -> dict[tuple[str, int], int]:
    return {(h.payload["doc_id"], h.payload["chunk_index"]): h.payload["version"] for h in hits}


async def test_ensure_tenant_creates_alias_to_first_generation(store: Any) -> None:
    alias = await store.ensure_tenant("acme", DIM, "m")
    assert alias.endswith("_acme")
    first = Collection(f"{alias}__v1", 1, "m", DIM, None, aliased=True)
    assert await store.current_collection("acme") == first
    assert await store.has_tenant("acme")
    assert await store.ensure_tenant("acme", DIM, "other") == alias  # idempotent
    assert await store.collections("acme") == [first]


@pytest.mark.parametrize("kind", ["edge", "memory"])
async def test_collection_prefix_is_used(kind: str, tmp_path: Path) -> None:
    s = open_store(kind, tmp_path, prefix="docs")
    try:
        assert await s.ensure_tenant("beta", DIM, "m") == "docs_beta"
        assert [c.name for c in await s.collections("beta")] == ["docs_beta__v1"]
    finally:
        await s.close()


async def test_has_tenant_is_false_for_unknown(store: Any) -> None:
    assert not await store.has_tenant("nobody")
    await store.ensure_tenant("acme", DIM, "m")
    assert not await store.has_tenant("nobody")


async def test_count_is_the_aliased_collections_points_of_the_tenant(store: Any) -> None:
    assert await store.count("acme") == 0  # no collection yet
    await store.ensure_tenant("acme", DIM, "m")
    await store.ensure_tenant("other", DIM, "m")
    assert await store.count("acme") == 0
    await store.upsert("acme", [point("a", i, 1, [1, i, 0, 0]) for i in range(3)], version=1)
    await store.upsert("acme", [point("a", 0, 2, [1, 0, 1, 0])], version=2)  # replaces a point: still 3
    await store.upsert("other", [point("x", 0, 1, [0, 0, 0, 1], tenant="other")], version=1)
    assert (await store.count("acme"), await store.count("other")) == (3, 1)
    await store.delete_doc("acme", "a", below_version=2)
    assert await store.count("acme") == 1
    alias = store.alias("acme")
    await store.create_generation("acme", 2, DIM, "m")  # a reindex's next generation: not counted until the flip
    await store.upsert("acme", [point("b", i, 1, [0, 1, i, 0]) for i in range(4)], version=1, collection=f"{alias}__v2")
    assert await store.count("acme") == 1
    await store.flip_alias("acme", f"{alias}__v2")
    assert await store.count("acme") == 4


async def test_upsert_with_lower_version_keeps_the_stored_point(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("a", 0, 5, [1, 0, 0, 0])], version=5)
    await store.upsert("acme", [point("a", 0, 3, [0, 1, 0, 0])], version=3)
    await store.upsert("acme", [point("a", 0, 5, [0, 0, 1, 0])], version=5)
    (hit,) = await store.points("acme")
    assert hit.payload["version"] == 5
    assert hit.payload["text"] == "a#0@5"
    (best,) = await store.search("acme", [1, 0, 0, 0], 1)
    assert best.score == pytest.approx(1.0, abs=1e-5)


async def test_upsert_with_higher_version_replaces_the_point(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("a", 0, 1, [1, 0, 0, 0])], version=1)
    await store.upsert("acme", [point("a", 0, 2, [0, 1, 0, 0])], version=2)
    hits = await store.points("acme")
    assert by_slot(hits) == {("a", 0): 2}
    (best,) = await store.search("acme", [0, 1, 0, 0], 1)
    assert best.payload["version"] == 2
    assert best.score == pytest.approx(1.0, abs=1e-5)


async def test_delete_below_version_removes_only_older_points(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("a", i, 1, [1, i, 0, 0]) for i in range(3)], version=1)
    await store.upsert("acme", [point("a", 0, 2, [1, 0, 1, 0])], version=2)
    await store.upsert("acme", [point("b", 0, 1, [0, 0, 0, 1])], version=1)
    await store.delete_doc("acme", "a", below_version=2)
    assert by_slot(await store.points("acme")) == {("a", 0): 2, ("b", 0): 1}


async def test_delete_upto_version_removes_up_to_it(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("a", 0, 3, [1, 0, 0, 0]), point("a", 1, 3, [1, 1, 0, 0])], version=3)
    await store.upsert("acme", [point("a", 2, 9, [1, 1, 1, 0])], version=9)
    await store.upsert("acme", [point("b", 0, 1, [0, 0, 0, 1])], version=1)
    await store.delete_doc("acme", "a", upto_version=3)
    assert by_slot(await store.points("acme")) == {("a", 2): 9, ("b", 0): 1}
    await store.delete_doc("acme", "a", upto_version=9)
    assert by_slot(await store.points("acme")) == {("b", 0): 1}


async def test_search_returns_the_nearest_first(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert(
        "acme",
        [
            point("north", 0, 1, [0, 1, 0, 0]),
            point("east", 0, 1, [1, 0, 0, 0]),
            point("north-east", 0, 1, [1, 1, 0, 0]),
        ],
        version=1,
    )
    hits = await store.search("acme", [0.1, 1, 0, 0], 3)
    assert [h.payload["doc_id"] for h in hits] == ["north", "north-east", "east"]
    assert hits[0].score > hits[1].score > hits[2].score
    assert hits[0].id == point_id("acme", "north", 0)
    (only,) = await store.search("acme", [0.1, 1, 0, 0], 3, doc_ids=["east"])
    assert only.payload["doc_id"] == "east"


async def test_tenants_are_isolated(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.ensure_tenant("beta", DIM, "m")
    await store.upsert("acme", [point("shared.md", 0, 1, [1, 0, 0, 0], tenant="acme")], version=1)
    await store.upsert(
        "beta",
        [point("shared.md", 0, 1, [1, 0, 0, 0], tenant="beta"), point("b-only.md", 0, 1, [0, 1, 0, 0], tenant="beta")],
        version=1,
    )
    for query in ([1, 0, 0, 0], [0, 1, 0, 0]):
        hits = await store.search("acme", query, 10)
        assert [h.payload["tenant_id"] for h in hits] == ["acme"]
    await store.delete_doc("acme", "shared.md")
    assert await store.points("acme") == []
    assert {h.payload["doc_id"] for h in await store.points("beta")} == {"shared.md", "b-only.md"}


# --- reindex: generations beside the aliased one, the flip, the drop ---------------------------


async def test_create_generation_records_its_model_and_stays_unaliased(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "old-model")
    created = await store.create_generation("acme", 2, DIM, "new-model", "/models/new")
    assert created == Collection("rag_acme__v2", 2, "new-model", DIM, "/models/new", aliased=False)
    assert await store.create_generation("acme", 2, DIM, "other", None) == created  # idempotent: a resume
    assert await store.collections("acme") == [
        Collection("rag_acme__v1", 1, "old-model", DIM, None, aliased=True),
        created,
    ]
    assert await store.current_collection("acme") == Collection("rag_acme__v1", 1, "old-model", DIM, None, True)
    assert await store.current_collection("nobody") is None
    assert Collection.from_json(created.to_json()) == created


async def test_writes_into_a_generation_do_not_reach_the_alias(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("a", 0, 1, [1, 0, 0, 0])], version=1)
    await store.create_generation("acme", 2, DIM, "m")
    await store.upsert("acme", [point("b", 0, 1, [0, 1, 0, 0])], version=1, collection="rag_acme__v2")
    assert by_slot(await store.points("acme")) == {("a", 0): 1}
    await store.delete_doc("acme", "a", upto_version=1, collection="rag_acme__v2")
    assert by_slot(await store.points("acme")) == {("a", 0): 1}
    with pytest.raises(BadInput):
        await store.upsert("acme", [point("b", 0, 1, [0, 1, 0, 0])], version=1, collection="rag_beta__v1")
    with pytest.raises(BadInput):
        await store.delete_doc("acme", "a", collection="rag_acme")


async def test_flip_moves_queries_and_live_writes_then_the_old_generation_drops(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("old", 0, 1, [1, 0, 0, 0])], version=1)
    await store.create_generation("acme", 2, DIM, "m2", "src")
    await store.upsert("acme", [point("new", 0, 1, [1, 0, 0, 0])], version=1, collection="rag_acme__v2")
    with pytest.raises(BadInput):
        await store.flip_alias("acme", "rag_acme__v3")  # missing: the alias stays where it is
    await store.flip_alias("acme", "rag_acme__v2")
    assert [(c.name, c.aliased) for c in await store.collections("acme")] == [
        ("rag_acme__v1", False),
        ("rag_acme__v2", True),
    ]
    assert [h.payload["doc_id"] for h in await store.search("acme", [1, 0, 0, 0], 5)] == ["new"]
    assert (await store.current_collection("acme")) == Collection("rag_acme__v2", 2, "m2", DIM, "src", True)
    await store.upsert("acme", [point("live", 0, 1, [0, 1, 0, 0])], version=1)  # the index stage's alias write
    assert by_slot(await store.points("acme")) == {("new", 0): 1, ("live", 0): 1}
    with pytest.raises(BadInput):
        await store.drop_collection("acme", "rag_acme__v2")  # never the aliased one
    await store.drop_collection("acme", "rag_acme__v1")
    assert [c.name for c in await store.collections("acme")] == ["rag_acme__v2"]


async def test_upsert_same_version_rewrites_and_trim_removes_what_only_an_older_version_has(
    store: Any,
) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    # the live stage wrote v2 (one chunk); a replay of v1 (three chunks) arrives after it
    await store.upsert("acme", [point("a", 0, 2, [1, 0, 0, 0])], version=2)
    await store.upsert("acme", [point("a", i, 1, [0, 1, 0, 0]) for i in range(3)], version=1, same_version=True)
    assert by_slot(await store.points("acme")) == {("a", 0): 2, ("a", 1): 1, ("a", 2): 1}  # guard kept v2
    await store.upsert("acme", [point("b", 0, 1, [0, 0, 1, 0])], version=1)
    await store.trim_doc("acme", "a", version=1)
    assert by_slot(await store.points("acme")) == {("a", 0): 2, ("b", 0): 1}
    # same_version: a point of the same version is rewritten (the reindex's vectors win)
    await store.upsert("acme", [point("a", 0, 2, [0, 0, 0, 1])], version=2, same_version=True)
    (best,) = await store.search("acme", [0, 0, 0, 1], 1)
    assert (best.payload["doc_id"], best.score) == ("a", pytest.approx(1.0, abs=1e-5))


async def test_doc_versions_reports_only_documents_stored_in_full(store: Any) -> None:
    def pt(doc: str, index: int, version: int, count: int) -> Point:
        p = point(doc, index, version, [1.0, float(index), 0.5, 0.0])
        return Point(p.id, p.vector, {**p.payload, "chunk_count": count})

    await store.ensure_tenant("acme", 4, "m")
    await store.upsert("acme", [pt("whole", 0, 2, 2), pt("whole", 1, 2, 2)], version=2)
    await store.upsert("acme", [pt("half", 0, 1, 2)], version=1)  # chunk 1 not indexed yet
    await store.upsert("acme", [pt("mixed", 0, 1, 2), pt("mixed", 1, 1, 2)], version=1)
    await store.upsert("acme", [pt("mixed", 0, 2, 2)], version=2)  # mid-replacement: 1 and 2 side by side
    wanted = ["whole", "half", "mixed", "absent"]
    assert await store.doc_versions("acme", wanted) == {"whole": 2}
    await store.upsert("acme", [pt("mixed", 1, 2, 2)], version=2)
    assert await store.doc_versions("acme", wanted) == {"whole": 2, "mixed": 2}


async def test_reuse_moves_unchanged_points_to_the_new_version_and_reports_the_rest(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    v1 = [point("a", i, 1, [1, float(i), 0, 0]) for i in range(3)]
    await store.upsert("acme", v1, version=1)
    newer = point("b", 0, 5, [0, 0, 1, 0])
    await store.upsert("acme", [newer], version=5)

    def moved(p: Point, version: int, **extra: Any) -> tuple[str, dict[str, Any]]:
        return p.id, {**p.payload, "version": version, "chunk_count": 3, **extra}

    unchanged = [moved(p, 2, content_hash=None) for p in v1[:2]]  # stored without a hash: equal (None)
    changed = moved(v1[2], 2, content_hash="other")
    absent = (point_id("acme", "a", 7), {"doc_id": "a", "version": 2, "content_hash": None})
    stale = moved(newer, 3, content_hash=None)  # the stored point is newer: the guard keeps it
    missing = await store.reuse("acme", [*unchanged, changed, absent, stale], version=2)
    assert sorted(missing) == sorted([changed[0], absent[0]])
    points = {h.payload["doc_id"] + str(h.payload["chunk_index"]): h.payload for h in await store.points("acme")}
    assert [points[f"a{i}"]["version"] for i in range(3)] == [2, 2, 1]
    assert points["a0"]["chunk_count"] == 3 and points["a0"]["text"] == "a#0@1"  # the slot's own keys stay
    assert points["b0"]["version"] == 5
    (best,) = await store.search("acme", [1, 1, 0, 0], 1)
    assert (best.payload["doc_id"], best.payload["chunk_index"]) == ("a", 1)  # the vector stayed


async def test_retag_moves_a_whole_document_to_the_new_version_in_one_write(store: Any) -> None:
    def pt(doc: str, index: int, version: int, count: int) -> Point:
        p = point(doc, index, version, [1.0, float(index), 0.5, float(doc == "b")])
        return Point(p.id, p.vector, {**p.payload, "chunk_count": count, "content_hash": f"h{index}", "model": "m"})

    assert await store.retag("acme", "a", {}, previous=1, version=2, expect=3) == 0  # no collection: nothing
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [pt("a", i, 1, 3) for i in range(3)], version=1)
    await store.upsert("acme", [pt("b", i, 1, 2) for i in range(2)], version=1)
    common = {"tenant_id": "acme", "doc_id": "a", "chunk_count": 3, "version": 7, "metadata": {"k": "v"}}
    assert await store.retag("acme", "a", common, previous=2, version=7, expect=3) == 0  # not at that version
    assert await store.retag("acme", "a", common, previous=1, version=7, expect=4) == 3  # not in full: no write
    assert await store.doc_versions("acme", ["a", "b"]) == {"a": 1, "b": 1}
    assert await store.retag("acme", "a", common, previous=1, version=7, expect=3) == 3
    points = {(h.payload["doc_id"], h.payload["chunk_index"]): h.payload for h in await store.points("acme")}
    assert [points[("a", i)]["version"] for i in range(3)] == [7, 7, 7]
    assert [points[("a", i)]["text"] for i in range(3)] == ["a#0@1", "a#1@1", "a#2@1"]  # slot keys stay
    assert [points[("a", i)]["content_hash"] for i in range(3)] == ["h0", "h1", "h2"]
    assert points[("a", 0)]["metadata"] == {"k": "v"} and points[("a", 0)]["model"] == "m"
    assert [points[("b", i)]["version"] for i in range(2)] == [1, 1]  # other documents untouched
    assert await store.doc_versions("acme", ["a", "b"]) == {"a": 7, "b": 1}  # read-your-writes sees it
    (best,) = await store.search("acme", [1.0, 2.0, 0.5, 0.0], 1)
    assert (best.payload["doc_id"], best.payload["chunk_index"], best.payload["version"]) == ("a", 2, 7)
    assert await store.retag("acme", "a", common, previous=1, version=7, expect=3) == 0  # a replay: nothing left
    # an edit and a delete after the retag
    await store.upsert("acme", [pt("a", 0, 8, 1)], version=8)
    await store.delete_doc("acme", "a", below_version=8)
    assert await store.doc_versions("acme", ["a"]) == {"a": 8}
    await store.delete_doc("acme", "a", upto_version=9)
    assert {h.payload["doc_id"] for h in await store.points("acme")} == {"b"}


async def test_export_pages_through_every_point_with_its_vector_and_payload(store: Any) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    written = [point("a", i, 1, [1.0, float(i), 0.5, 0.0]) for i in range(7)]
    await store.upsert("acme", written, version=1)
    await store.create_generation("acme", 2, DIM, "m")
    await store.upsert("acme", [point("z", 0, 1, [0, 0, 0, 1])], version=1, collection="rag_acme__v2")
    pages, offset, got = 0, None, []
    while True:
        page, offset = await store.export("acme", offset=offset, limit=3)
        got += page
        pages += 1
        if offset is None:
            break
    assert pages == 3 and sorted(p.id for p in got) == sorted(p.id for p in written)  # the alias, not v2
    by_id = {p.id: p for p in got}
    for p in written:
        norm = sum(x * x for x in p.vector) ** 0.5  # cosine: stored normalised
        assert by_id[p.id].vector == pytest.approx([x / norm for x in p.vector], abs=1e-6)
        assert by_id[p.id].payload == p.payload
    (only,), end = await store.export("acme", "rag_acme__v2")
    assert end is None and only.payload["doc_id"] == "z"
    with pytest.raises(BadInput):
        await store.export("acme", "rag_other__v1")


async def test_edge_store_survives_a_reopen(tmp_path: Path) -> None:
    s = EdgeVectorStore.open(tmp_path / "edge")
    await s.ensure_tenant("acme", DIM, "m")
    await s.upsert("acme", [point("a", 0, 1, [1, 0, 0, 0])], version=1)
    await s.create_generation("acme", 2, DIM, "m2")
    await s.flip_alias("acme", "rag_acme__v2")
    await s.upsert("acme", [point("b", 0, 1, [0, 1, 0, 0])], version=1)
    await s.close()
    again = EdgeVectorStore.open(tmp_path / "edge")
    try:
        assert [(c.name, c.aliased) for c in await again.collections("acme")] == [
            ("rag_acme__v1", False),
            ("rag_acme__v2", True),
        ]
        assert by_slot(await again.points("acme")) == {("b", 0): 1}
        await again.upsert("acme", [point("b", 0, 0, [0, 0, 1, 0])], version=0)  # the guard survives too
        assert by_slot(await again.points("acme")) == {("b", 0): 1}
    finally:
        await again.close()


async def test_edge_index_build_runs_beside_writes_and_loses_none(tmp_path: Path) -> None:
    """The HNSW build runs in a child process on a copy; writes made meanwhile are replayed onto it."""
    s = EdgeVectorStore.open(tmp_path / "edge", index_threshold=200, segment_index_kb=1)
    try:
        await s.ensure_tenant("acme", DIM, "m")
        await s.upsert("acme", [point(f"d{i}", 0, 1, [1, float(i), 1, 0]) for i in range(250)], version=1)
        (handle,) = s._open.values()
        build = handle.build
        assert build is not None  # the threshold started a build
        while handle.journal is None and not build.done():  # wait until the copy is taken
            await __import__("asyncio").sleep(0.01)
        await s.upsert("acme", [point("late", 0, 1, [0, 0, 0, 1])], version=1)
        await s.delete_doc("acme", "d0")
        await build
        assert handle.folder == "shard-2"  # the built copy is live now
        assert sorted(p.name for p in (tmp_path / "edge" / "rag_acme__v1").iterdir()) == ["collection.json", "shard-2"]
        slots = by_slot(await s.points("acme"))
        assert len(slots) == 250 and ("late", 0) in slots and ("d0", 0) not in slots
        assert s._open["rag_acme__v1"].shard.info().indexed_vectors_count > 0
        (best,) = await s.search("acme", [0, 0, 0, 1], 1)
        assert best.payload["doc_id"] == "late"
    finally:
        await s.close()
