"""End to end on the real broker: publish -> chunk -> embed -> index -> search, for two tenants."""

from __future__ import annotations

from collections import Counter
from importlib import resources
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from rag_streams.adapters.codecs import CHUNK, DEADLETTER, EMBEDDING, RAW
from rag_streams.adapters.embedding import SentenceTransformerEmbedder
from rag_streams.rules.chunking import chunk_document
from rag_streams.rules.records import RawDocument

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def model() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def corpus() -> dict[str, str]:
    folder = resources.files("rag_streams") / "sample_corpus"
    return {p.name: p.read_text() for p in folder.iterdir() if p.name.endswith(".md")}


def expected_points(
    model: Any, tenant: str, docs: dict[str, tuple[int, str]], settings: Any
) -> dict[str, dict[str, Any]]:
    out = {}
    for doc_id, (version, text) in docs.items():
        doc = RawDocument(tenant, doc_id, version, text=text)
        for c in chunk_document(doc, model, size=settings.chunk_tokens, overlap=settings.chunk_overlap):
            out[c.chunk_id] = {
                "tenant_id": tenant,
                "doc_id": doc_id,
                "version": version,
                "chunk_index": c.chunk_index,
                "chunk_count": c.chunk_count,
                "content_hash": c.content_hash,
            }
    return out


def as_expected(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    keys = ("tenant_id", "doc_id", "version", "chunk_index", "chunk_count", "content_hash")
    return {p["id"]: {k: p[k] for k in keys} for p in points}


async def drained(pipeline: Any, tenant: str, expected: dict[str, Any]) -> None:
    async def done() -> bool:
        return as_expected(await pipeline.points(tenant)) == expected

    await pipeline.wait_for(done, timeout=240, what=f"{tenant}'s collection to hold the expected points")


async def test_two_tenants_end_to_end(pipeline: Any, model: Any) -> None:
    docs = corpus()
    acme_ids = ["kafka-transactions.md", "tide-pools.md", "volcanoes.md", "sourdough-baking.md"]
    beta_ids = ["honeybee-colonies.md", "chess-openings.md"]
    async with pipeline.producer() as p:
        acme = {d: (await p.upsert("acme", d, docs[d], metadata={"path": d}), docs[d]) for d in acme_ids}
        beta = {d: (await p.upsert("beta", d, docs[d]), docs[d]) for d in beta_ids}

    want_acme = expected_points(model, "acme", acme, pipeline.settings)
    want_beta = expected_points(model, "beta", beta, pipeline.settings)
    await drained(pipeline, "acme", want_acme)
    await drained(pipeline, "beta", want_beta)
    acme_points = await pipeline.points("acme")
    assert {p["metadata"]["path"] for p in acme_points} == set(acme_ids)
    assert all(p["model"] == "sentence-transformers/all-MiniLM-L6-v2" for p in acme_points)

    hits = await pipeline.search("acme", "How does a sea star open a mussel?")
    assert hits[0]["doc_id"] == "tide-pools.md"
    hits = await pipeline.search("acme", "Which control records tell a read_committed consumer a transaction aborted?")
    assert hits[0]["doc_id"] == "kafka-transactions.md"
    # Tenant isolation: beta's question about bees, asked of acme, never returns beta's documents.
    for q in ("What does the waggle dance tell other bees?", "How does the Italian game begin?"):
        assert {h["doc_id"] for h in await pipeline.search("acme", q, k=20)} <= set(acme_ids)
        assert {h["doc_id"] for h in await pipeline.search("beta", q, k=20)} <= set(beta_ids)

    # Every chunk on the chunk topic fits the model: no silent truncation.
    chunks = [CHUNK.decode(r.value) for r in await pipeline.read_topic(pipeline.topics.chunks)]
    assert chunks and max(model.count_tokens(c.text) for c in chunks) <= model.max_tokens


async def test_update_shrink_delete_and_stale(pipeline: Any, model: Any) -> None:
    long_text = corpus()["volcanoes.md"]
    short_text = "Volcanoes, briefly: magma rises, pressure builds, and the mountain erupts."
    async with pipeline.producer() as p:
        await p.upsert("acme", "v.md", long_text, version=10)
        await p.upsert("acme", "keep.md", corpus()["tide-pools.md"], version=10)
    await drained(
        pipeline,
        "acme",
        {
            **expected_points(model, "acme", {"v.md": (10, long_text)}, pipeline.settings),
            **expected_points(model, "acme", {"keep.md": (10, corpus()["tide-pools.md"])}, pipeline.settings),
        },
    )
    async with pipeline.producer() as p:
        await p.upsert("acme", "v.md", short_text, version=20)  # shrinks to one chunk
        await p.upsert("acme", "v.md", long_text, version=15)  # stale: lower than 20
        await p.delete("acme", "keep.md", version=11)
        await p.upsert("acme", "keep.md", "an old version that must never come back", version=5)  # stale after delete
    await drained(pipeline, "acme", expected_points(model, "acme", {"v.md": (20, short_text)}, pipeline.settings))
    latest = {r.key.decode(): r.value for r in await pipeline.read_topic(pipeline.topics.latest)}
    assert latest["acme/keep.md"] is None  # the delete's tombstone is the last record for the key
    assert RAW.decode(latest["acme/v.md"]).version == 20

    # A Kafka tombstone on the raw topic deletes the accepted version; that version cannot come back.
    stale_before = await pipeline.metric("rag_stale_writes_dropped_total")
    async with pipeline.producer() as p:
        await p.send_raw(b"acme/v.md", None)
        await p.upsert("acme", "v.md", short_text, version=20)  # same version as the deleted one: stale
    await drained(pipeline, "acme", {})

    async def dropped() -> bool:
        return await pipeline.metric("rag_stale_writes_dropped_total") > stale_before

    await pipeline.wait_for(dropped, timeout=120, what="the upsert after the tombstone to be dropped as stale")
    assert await pipeline.points("acme") == []
    async with pipeline.producer() as p:
        await p.upsert("acme", "v.md", short_text, version=21)  # a re-create with a higher version works
    await drained(pipeline, "acme", expected_points(model, "acme", {"v.md": (21, short_text)}, pipeline.settings))


async def test_transactions_dead_letters_and_avro_on_every_topic(pipeline: Any) -> None:
    raw_topic = pipeline.topics.raw
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap)
    await producer.start()
    bad = {
        b"not avro at all": b"acme/x",
        RAW.encode(RawDocument("BAD TENANT", "x", 1, text="hi")): b"BAD TENANT/x",
        RAW.encode(RawDocument("acme", "empty.md", 1, text="   ")): b"acme/empty.md",
        RAW.encode(RawDocument("acme", "k.md", 1, text="hi")): b"acme/other-key",
    }
    try:
        for value, key in bad.items():
            await producer.send_and_wait(raw_topic, value, key=key)
    finally:
        await producer.stop()
    async with pipeline.producer() as p:
        await p.upsert("acme", "good.md", corpus()["chess-openings.md"], version=7)

    async def good_indexed() -> bool:
        return {pt["doc_id"] for pt in await pipeline.points("acme")} == {"good.md"}

    await pipeline.wait_for(good_indexed, timeout=240, what="the good document after the bad ones")
    assert pipeline.worker.alive()

    letters = [DEADLETTER.decode(r.value) for r in await pipeline.read_topic(pipeline.topics.deadletter)]
    assert {(dl.value, dl.key) for dl in letters} == set(bad.items())
    assert {dl.stage for dl in letters} == {"chunk"} and all(dl.message and dl.error_class for dl in letters)

    # Messages on every topic decode with the Avro schemas.
    assert [RAW.decode(r.value).doc_id for r in await pipeline.read_topic(pipeline.topics.latest)] == ["good.md"]
    chunks = [CHUNK.decode(r.value) for r in await pipeline.read_topic(pipeline.topics.chunks)]
    embeds = [EMBEDDING.decode(r.value) for r in await pipeline.read_topic(pipeline.topics.embeddings)]
    assert [c.chunk_index for c in chunks] == list(range(chunks[0].chunk_count))
    assert [(e.chunk_id, e.dim, len(e.vector)) for e in embeds] == [(c.chunk_id, 384, 384 * 4) for c in chunks]

    # The chunk topic is written in Kafka transactions: commit markers take offsets, so the log
    # end is past the last data record, and an uncommitted read sees nothing a committed one doesn't.
    committed = await pipeline.read_topic(pipeline.topics.chunks)
    uncommitted = await pipeline.read_topic(pipeline.topics.chunks, isolation="read_uncommitted")
    assert Counter((r.partition, r.offset) for r in committed) == Counter((r.partition, r.offset) for r in uncommitted)
    by_partition: dict[int, list[int]] = {}
    for r in committed:
        by_partition.setdefault(r.partition, []).append(r.offset)
    ends = await _end_offsets(pipeline, pipeline.topics.chunks, by_partition)
    markers = sum(ends[p] for p in by_partition) - len(committed)
    assert markers > 0, (
        f"the chunk topic has no transaction control records: ends={ends} records={len(committed)}; "
        f"worker log:\n{pipeline.worker.log.read_text()[-4000:]}"
    )


async def _end_offsets(pipeline: Any, topic: str, partitions: dict[int, list[int]]) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=pipeline.settings.kafka_bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()
