"""QdrantVectorStore on the real qdrant-client (in memory): aliases, version guard, deletes, isolation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rag_streams.errors import BadInput
from rag_streams.ids import point_id
from rag_streams.vectorstore import Collection, Point, QdrantVectorStore

DIM = 4


@pytest.fixture
async def store() -> AsyncIterator[QdrantVectorStore]:
    s = QdrantVectorStore.in_memory()
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


async def test_ensure_tenant_creates_alias_to_first_generation(store: QdrantVectorStore) -> None:
    assert await store.ensure_tenant("acme", DIM, "m") == "rag_acme"
    aliases = {a.alias_name: a.collection_name for a in store._client.get_aliases().aliases}
    assert aliases == {"rag_acme": "rag_acme__v1"}
    assert await store.has_tenant("acme")
    store._known.clear()
    await store.ensure_tenant("acme", DIM, "m")
    assert [c.name for c in store._client.get_collections().collections] == ["rag_acme__v1"]


async def test_collection_prefix_is_used() -> None:
    s = QdrantVectorStore.in_memory(prefix="docs")
    try:
        assert await s.ensure_tenant("beta", DIM, "m") == "docs_beta"
        assert {a.alias_name: a.collection_name for a in s._client.get_aliases().aliases} == {
            "docs_beta": "docs_beta__v1"
        }
    finally:
        await s.close()


async def test_has_tenant_is_false_for_unknown(store: QdrantVectorStore) -> None:
    assert not await store.has_tenant("nobody")
    await store.ensure_tenant("acme", DIM, "m")
    assert not await store.has_tenant("nobody")


async def test_upsert_with_lower_version_keeps_the_stored_point(store: QdrantVectorStore) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("a", 0, 5, [1, 0, 0, 0])], version=5)
    await store.upsert("acme", [point("a", 0, 3, [0, 1, 0, 0])], version=3)
    await store.upsert("acme", [point("a", 0, 5, [0, 0, 1, 0])], version=5)
    (hit,) = await store.points("acme")
    assert hit.payload["version"] == 5
    assert hit.payload["text"] == "a#0@5"
    (best,) = await store.search("acme", [1, 0, 0, 0], 1)
    assert best.score == pytest.approx(1.0, abs=1e-5)


async def test_upsert_with_higher_version_replaces_the_point(store: QdrantVectorStore) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("a", 0, 1, [1, 0, 0, 0])], version=1)
    await store.upsert("acme", [point("a", 0, 2, [0, 1, 0, 0])], version=2)
    hits = await store.points("acme")
    assert by_slot(hits) == {("a", 0): 2}
    (best,) = await store.search("acme", [0, 1, 0, 0], 1)
    assert best.payload["version"] == 2
    assert best.score == pytest.approx(1.0, abs=1e-5)


async def test_delete_below_version_removes_only_older_points(store: QdrantVectorStore) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("a", i, 1, [1, i, 0, 0]) for i in range(3)], version=1)
    await store.upsert("acme", [point("a", 0, 2, [1, 0, 1, 0])], version=2)
    await store.upsert("acme", [point("b", 0, 1, [0, 0, 0, 1])], version=1)
    await store.delete_doc("acme", "a", below_version=2)
    assert by_slot(await store.points("acme")) == {("a", 0): 2, ("b", 0): 1}


async def test_delete_upto_version_removes_up_to_it(store: QdrantVectorStore) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("a", 0, 3, [1, 0, 0, 0]), point("a", 1, 3, [1, 1, 0, 0])], version=3)
    await store.upsert("acme", [point("a", 2, 9, [1, 1, 1, 0])], version=9)
    await store.upsert("acme", [point("b", 0, 1, [0, 0, 0, 1])], version=1)
    await store.delete_doc("acme", "a", upto_version=3)
    assert by_slot(await store.points("acme")) == {("a", 2): 9, ("b", 0): 1}
    await store.delete_doc("acme", "a", upto_version=9)
    assert by_slot(await store.points("acme")) == {("b", 0): 1}


async def test_search_returns_the_nearest_first(store: QdrantVectorStore) -> None:
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


async def test_tenants_are_isolated(store: QdrantVectorStore) -> None:
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


async def test_create_generation_records_its_model_and_stays_unaliased(store: QdrantVectorStore) -> None:
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


async def test_writes_into_a_generation_do_not_reach_the_alias(store: QdrantVectorStore) -> None:
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


async def test_flip_moves_queries_and_live_writes_then_the_old_generation_drops(store: QdrantVectorStore) -> None:
    await store.ensure_tenant("acme", DIM, "m")
    await store.upsert("acme", [point("old", 0, 1, [1, 0, 0, 0])], version=1)
    await store.create_generation("acme", 2, DIM, "m2", "src")
    await store.upsert("acme", [point("new", 0, 1, [1, 0, 0, 0])], version=1, collection="rag_acme__v2")
    with pytest.raises(BadInput):
        await store.flip_alias("acme", "rag_acme__v3")  # missing: the alias stays where it is
    await store.flip_alias("acme", "rag_acme__v2")
    aliases = {a.alias_name: a.collection_name for a in store._client.get_aliases().aliases}
    assert aliases == {"rag_acme": "rag_acme__v2"}
    assert [h.payload["doc_id"] for h in await store.search("acme", [1, 0, 0, 0], 5)] == ["new"]
    assert (await store.current_collection("acme")) == Collection("rag_acme__v2", 2, "m2", DIM, "src", True)
    await store.upsert("acme", [point("live", 0, 1, [0, 1, 0, 0])], version=1)  # the index stage's alias write
    assert by_slot(await store.points("acme")) == {("new", 0): 1, ("live", 0): 1}
    with pytest.raises(BadInput):
        await store.drop_collection("acme", "rag_acme__v2")  # never the aliased one
    await store.drop_collection("acme", "rag_acme__v1")
    assert [c.name for c in await store.collections("acme")] == ["rag_acme__v2"]


async def test_upsert_same_version_rewrites_and_trim_removes_what_only_an_older_version_has(
    store: QdrantVectorStore,
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


async def test_doc_versions_reports_only_documents_stored_in_full(store: QdrantVectorStore) -> None:
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
