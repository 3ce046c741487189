"""The pure rules of `rag-streams reindex`: naming, the resume decision, caught-up, record collapse, points."""

from __future__ import annotations

import numpy as np
import pytest

from rag_streams.adapters.codecs import RAW
from rag_streams.adapters.store.base import Collection
from rag_streams.errors import CliError
from rag_streams.rules.chunking import WhitespaceTokenizer, chunk_document
from rag_streams.rules.ids import point_id
from rag_streams.rules.records import DELETE, DELETED_VERSION_HEADER, RawDocument
from rag_streams.rules.reindex import DocAction, caught_up, collapse, consumer_group, plan_resume, points_of


def gen(n: int, *, aliased: bool = False, source: str | None = None) -> Collection:
    return Collection(f"rag_acme__v{n}", n, "m", 384, source, aliased)


def test_consumer_group_is_per_tenant_and_generation() -> None:
    assert consumer_group("rag-streams", "acme", 2) == "rag-streams-reindex-acme-v2"
    assert consumer_group("rag-streams", "acme", 3) != consumer_group("rag-streams", "beta", 3)


def test_a_fresh_reindex_builds_the_next_generation_and_drops_the_current() -> None:
    plan = plan_resume([gen(1, aliased=True)])
    assert (plan.current.name, plan.generation, plan.existing, plan.flipped) == ("rag_acme__v1", 2, None, False)
    assert plan.drop == ("rag_acme__v1",)
    assert plan_resume([gen(3, aliased=True)]).generation == 4


def test_an_unfinished_build_is_resumed_not_started_again() -> None:
    plan = plan_resume([gen(1, aliased=True), gen(2, source="/m")])
    assert (plan.generation, plan.existing, plan.flipped) == (2, gen(2, source="/m"), False)
    assert plan.drop == ("rag_acme__v1",)
    # two leftovers: continue into the newest, drop the other one too
    plan = plan_resume([gen(1, aliased=True), gen(2), gen(3)])
    assert (plan.generation, plan.drop) == (3, ("rag_acme__v1", "rag_acme__v2"))


def test_a_run_stopped_after_the_flip_only_finishes() -> None:
    plan = plan_resume([gen(1), gen(2, aliased=True)])
    assert (plan.generation, plan.existing, plan.flipped, plan.drop) == (
        2,
        gen(2, aliased=True),
        True,
        ("rag_acme__v1",),
    )


def test_a_tenant_without_collection_cannot_be_reindexed() -> None:
    with pytest.raises(CliError, match="no collection"):
        plan_resume([])
    with pytest.raises(CliError):
        plan_resume([gen(1), gen(2)])  # nothing aliased


def test_caught_up_needs_every_partition_at_its_end() -> None:
    assert caught_up({0: 5, 1: 3}, {0: 5, 1: 3})
    assert caught_up({0: 6, 1: 3}, {0: 5, 1: 3})
    assert not caught_up({0: 5, 1: 2}, {0: 5, 1: 3})
    assert not caught_up({0: 5}, {0: 5, 1: 1})  # a partition never read
    assert caught_up({}, {})


def raw(doc_id: str, version: int, text: str = "some text", tenant: str = "acme", op: str = "UPSERT") -> bytes:
    return RAW.encode(RawDocument(tenant, doc_id, version, op=op, text=text if op != DELETE else ""))


def test_collapse_keeps_the_tenants_last_record_per_document() -> None:
    records = [
        (b"acme/a.md", raw("a.md", 1), []),
        (b"beta/a.md", raw("a.md", 9, tenant="beta"), []),  # another tenant: ignored
        (b"acme/b.md", raw("b.md", 1), []),
        (b"acme/a.md", raw("a.md", 2, "new text"), []),
        (b"acme/b.md", None, [(DELETED_VERSION_HEADER, b"4")]),  # tombstone with its deleted version
        (b"acme/c.md", None, []),  # tombstone of an older writer: delete whatever is there
        (None, raw("x", 1), []),
    ]
    actions, bad = collapse(records, "acme")
    assert bad == 0
    by_doc = {a.doc_id: a for a in actions}
    assert set(by_doc) == {"a.md", "b.md", "c.md"}
    assert by_doc["a.md"].doc is not None and (by_doc["a.md"].doc.version, by_doc["a.md"].doc.text) == (2, "new text")
    assert by_doc["b.md"] == DocAction("b.md", None, 4)
    assert by_doc["c.md"] == DocAction("c.md", None, None)


def test_collapse_a_recreated_document_and_undecodable_records() -> None:
    records = [
        (b"acme/a.md", None, [(DELETED_VERSION_HEADER, b"1")]),
        (b"acme/a.md", raw("a.md", 5), []),
        (b"acme/d.md", raw("d.md", 3, op=DELETE), []),
        (b"acme/bad.md", b"not avro", []),
        (b"acme/other.md", raw("a.md", 1), []),  # key and value disagree
    ]
    actions, bad = collapse(records, "acme")
    assert bad == 2
    by_doc = {a.doc_id: a for a in actions}
    assert set(by_doc) == {"a.md", "d.md"}
    assert by_doc["a.md"].doc is not None and by_doc["a.md"].doc.version == 5
    assert by_doc["d.md"] == DocAction("d.md", None, 3)


def test_points_carry_the_index_stage_payload_and_deterministic_ids() -> None:
    doc = RawDocument("acme", "a.md", 7, text="one two three four five six seven", metadata={"lang": "en"})
    chunks = chunk_document(doc, WhitespaceTokenizer(), size=4, overlap=1)
    vectors = np.eye(len(chunks), 4, dtype=np.float32)
    points = points_of(chunks, list(vectors), "new-model")
    assert [p.id for p in points] == [point_id("acme", "a.md", i) for i in range(len(chunks))]
    first = points[0].payload
    assert first == {
        "tenant_id": "acme",
        "doc_id": "a.md",
        "chunk_index": 0,
        "chunk_count": len(chunks),
        "version": 7,
        "text": chunks[0].text,
        "content_hash": chunks[0].content_hash,
        "model": "new-model",
        "metadata": {"lang": "en"},
    }
    assert list(points[1].vector) == [0.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        points_of(chunks, list(vectors)[:-1], "m")


async def test_services_look_up_a_tenants_model_briefly_cached_and_keep_one_embedder_per_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rag_streams.adapters import services as services_module
    from rag_streams.adapters.services import MODEL_CACHE_S, Services
    from rag_streams.adapters.store.qdrant import QdrantVectorStore
    from rag_streams.settings import load_settings
    from rag_streams.testing import HashingEmbedder

    store = QdrantVectorStore.in_memory()
    default, other = HashingEmbedder(), HashingEmbedder(dim=8)
    services = Services(load_settings({}, dotenv=None), embedder=default, store=store)
    services._embedders["/models/other"] = other
    now = [100.0]
    monkeypatch.setattr(services_module.time, "monotonic", lambda: now[0])
    try:
        assert await services.tenant_model("acme") is None  # no collection yet: the default model
        await store.ensure_tenant("acme", 4, "m")
        await store.create_generation("acme", 2, 8, "other", "/models/other")
        await store.flip_alias("acme", "rag_acme__v2")
        assert await services.tenant_model("acme") is None  # still cached
        now[0] += MODEL_CACHE_S
        assert await services.tenant_model("acme") == "/models/other"
        assert await services.embedder(await services.tenant_model("acme")) is other
        assert await services.embedder() is default
    finally:
        await store.close()


def test_the_chase_before_the_flip_ends_when_caught_up_or_after_its_rounds() -> None:
    from rag_streams.rules.reindex import CHASE_ROUNDS, chase_more

    behind, level = {"p0": 10}, {"p0": 12}
    assert chase_more(0, behind, level)
    assert not chase_more(0, {"p0": 12}, level)  # caught up: flip
    # sustained writes move the end every round: the flip still comes, the tail applies the rest
    assert [chase_more(r, behind, level) for r in range(CHASE_ROUNDS + 1)] == [True] * CHASE_ROUNDS + [False]
