"""Each stage as Faust runs it (test_context), fed real encoded messages."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import numpy as np

from rag_streams.adapters.codecs import CHUNK, DEADLETTER, EMBEDDING, RAW
from rag_streams.adapters.embedding import from_bytes, to_bytes
from rag_streams.observability import metrics
from rag_streams.rules.chunking import chunk_document
from rag_streams.rules.records import DELETE, RawDocument
from rag_streams.rules.retag import retag_chunk, retag_headers
from rag_streams.rules.versions import DocState
from rag_streams.testing import HashingEmbedder

from support.agent_app import (
    accepted_versions,
    app,
    applied_versions,
    chunk_documents,
    embed_chunks,
    embedded_docs,
    index_embeddings,
    names,
    services,
    settings,
    settle,
    upserts,
)

TEXT = " ".join(f"word{i}" for i in range(60))


def stale_count(stage: str) -> float:
    return metrics.stale_writes_dropped_total.labels(stage)._value.get()


async def test_chunk_accepts_newer_drops_stale_and_duplicates(sent: Any, fakes: Any) -> None:
    doc = RawDocument("acme", "a.md", 5, text=TEXT)
    before = stale_count("chunk")
    async with chunk_documents.test_context() as agent:
        await agent.put(RAW.encode(doc), key=b"acme/a.md", partition=2)
        await agent.put(RAW.encode(doc), key=b"acme/a.md", partition=2)  # duplicate
        await agent.put(RAW.encode(RawDocument("acme", "a.md", 4, text="older")), key=b"acme/a.md", partition=2)

    chunks = [CHUNK.decode(m["value"]) for m in sent.on(names.chunks)]
    assert chunks == chunk_document(doc, fakes["embedder"], size=20, overlap=4)
    assert len(chunks) > 1 and all(m["partition"] == 2 and m["key"] == b"acme/a.md" for m in sent.on(names.chunks))
    assert [RAW.decode(m["value"]) for m in sent.on(names.latest)] == [doc]
    assert accepted_versions["acme/a.md"][:2] == [5, False]
    assert accepted_versions["acme/a.md"][3] == len(chunks)  # with the content hash: see the retag test
    assert stale_count("chunk") == before + 1


async def test_chunk_sends_one_retag_record_for_an_unchanged_version(sent: Any, fakes: Any) -> None:
    doc = RawDocument("acme", "r.md", 5, text=TEXT, metadata={"k": "v"})
    async with chunk_documents.test_context() as agent:
        await agent.put(RAW.encode(doc), key=b"acme/r.md", partition=1)
        await agent.put(RAW.encode(dataclasses.replace(doc, version=6)), key=b"acme/r.md", partition=1)
        await agent.put(
            RAW.encode(dataclasses.replace(doc, version=7, text=TEXT + " more")), key=b"acme/r.md", partition=1
        )
        for _ in range(50):  # chunking runs in a thread: let the last one finish
            if (accepted_versions.get("acme/r.md") or [0])[0] == 7:
                break
            await settle(0.1)

    messages = sent.on(names.chunks)
    first = chunk_document(doc, fakes["embedder"], size=20, overlap=4)
    retag = [m for m in messages if CHUNK.decode(m["value"]).version == 6]
    assert len(retag) == 1 and retag[0]["partition"] == 1 and dict(retag[0]["headers"]) == {"rag-retag": b"5"}
    record = CHUNK.decode(retag[0]["value"])
    assert (record.chunk_count, record.text, record.metadata) == (len(first), "", {"k": "v"})
    edited = [CHUNK.decode(m["value"]) for m in messages if CHUNK.decode(m["value"]).version == 7]
    assert len(edited) > 1 and all(not m.get("headers") for m in messages if m not in retag)  # changed: chunked
    assert [RAW.decode(m["value"]).version for m in sent.on(names.latest)] == [5, 6, 7]
    assert accepted_versions["acme/r.md"][:2] == [7, False]


async def test_chunk_delete_writes_tombstone_and_delete_marker(sent: Any, fakes: Any) -> None:
    async with chunk_documents.test_context() as agent:
        await agent.put(RAW.encode(RawDocument("acme", "a.md", 1, text=TEXT)), key=b"acme/a.md")
        await agent.put(RAW.encode(RawDocument("acme", "a.md", 2, op=DELETE)), key=b"acme/a.md")
        await agent.put(RAW.encode(RawDocument("acme", "a.md", 1, text=TEXT)), key=b"acme/a.md")  # stale now

    assert [m["value"] is None for m in sent.on(names.latest)] == [False, True]
    last = CHUNK.decode(sent.on(names.chunks)[-1]["value"])
    assert (last.op, last.version, last.chunk_count) == (DELETE, 2, 0)
    assert accepted_versions["acme/a.md"] == [2, True]


async def test_chunk_dead_letters_bad_input_and_keeps_going(sent: Any, fakes: Any) -> None:
    bad = [
        (b"\x00garbage", b"acme/x"),
        (RAW.encode(RawDocument("Acme!", "x", 1, text="t")), b"Acme!/x"),
        (RAW.encode(RawDocument("acme", "x", 1, text="")), b"acme/x"),
        (RAW.encode(RawDocument("acme", "x", 1, text="t")), b"wrong/key"),
    ]
    async with chunk_documents.test_context() as agent:
        for value, key in bad:
            await agent.put(value, key=key)
        await agent.put(RAW.encode(RawDocument("acme", "ok.md", 1, text=TEXT)), key=b"acme/ok.md")

    letters = [DEADLETTER.decode(m["value"]) for m in sent.on(names.deadletter)]
    assert [(dl.value, dl.key, dl.stage, dl.error_class) for dl in letters] == [
        (v, k, "chunk", "BadInput") for v, k in bad
    ]
    assert {CHUNK.decode(m["value"]).doc_id for m in sent.on(names.chunks)} == {"ok.md"}


async def test_embed_batches_and_passes_deletes(sent: Any, fakes: Any) -> None:
    doc = RawDocument("acme", "a.md", 3, text=TEXT)
    chunks = chunk_document(doc, fakes["embedder"], size=20, overlap=4)
    delete = chunk_document(RawDocument("acme", "b.md", 9, op=DELETE), fakes["embedder"], size=20, overlap=4)[0]
    model_s = metrics.embed_model_seconds_total._value.get()
    async with embed_chunks.test_context() as agent:
        for c in [*chunks, delete]:
            await agent.put(CHUNK.encode(c), key=c.key.encode())
        await agent.put(b"not a chunk", key=b"acme/a.md")
        await settle()

    out = [EMBEDDING.decode(m["value"]) for m in sent.on(names.embeddings)]
    assert [(e.chunk_id, e.op) for e in out] == [(c.chunk_id, c.op) for c in [*chunks, delete]]
    expected = HashingEmbedder().embed([c.text for c in chunks])
    for e, row in zip(out, expected, strict=False):
        assert e.dim == 384 and e.model == "hashing-fake" and e.vector == to_bytes(row)
    assert out[-1].vector == b""
    assert sum(fakes["embedder"].calls) == len(chunks) and len(fakes["embedder"].calls) < len(chunks)
    assert [DEADLETTER.decode(m["value"]).stage for m in sent.on(names.deadletter)] == ["embed"]
    assert metrics.embed_model_seconds_total._value.get() > model_s  # the model's busy time is exported


class GatedEmbedder(HashingEmbedder):
    """Its second model batch waits (up to 5 s, on the model thread) for an output to be sent and
    for the first batch's events to be acked."""

    def __init__(self) -> None:
        super().__init__()
        self.first_sent = threading.Event()
        self.first_batch: list[Any] = []
        self.second_saw_a_send: bool | None = None
        self.second_saw_the_first_acked: bool | None = None

    def embed(self, texts: Any) -> Any:
        if len(self.calls) == 1:  # the take's second batch
            self.second_saw_a_send = self.first_sent.wait(5)
            deadline = time.monotonic() + 5
            while not all(e.message.acked for e in self.first_batch) and time.monotonic() < deadline:
                time.sleep(0.01)
            self.second_saw_the_first_acked = all(e.message.acked for e in self.first_batch)
        return super().embed(texts)


async def test_embed_sends_a_batch_while_the_model_runs_the_next(sent: Any, fakes: Any) -> None:
    """A take holds RAG_EMBED_BATCHES_PER_TAKE model batches, queued on the model thread together:
    the first batch's outputs are sent, and its events acked, while the second runs (the model does
    not wait for sends, and the next stage need not wait for the whole take)."""
    embedder = GatedEmbedder()
    services.override(embedder=embedder, store=fakes["store"])
    text = " ".join(f"word{i}" for i in range(200))
    chunks = chunk_document(RawDocument("acme", "long.md", 1, text=text), embedder, size=20, overlap=4)
    assert settings.embed_batch < len(chunks) <= 2 * settings.embed_batch and settings.embed_batches_per_take > 1

    class Signalling(list):  # type: ignore[type-arg]
        def append(self, item: Any) -> None:
            super().append(item)
            embedder.first_sent.set()

    sent.messages = Signalling()
    sends_at_submit: list[int] = []
    run_model = services.run_model

    async def recording_run_model(fn: Any, *args: Any) -> Any:
        sends_at_submit.append(len(sent.on(names.embeddings)))
        return await run_model(fn, *args)

    services.run_model = recording_run_model  # type: ignore[method-assign]
    try:
        async with embed_chunks.test_context() as agent:
            events = [await agent.put(CHUNK.encode(c), key=c.key.encode()) for c in chunks]
            embedder.first_batch = events[: settings.embed_batch]
            await settle()
    finally:
        del services.run_model  # the class's method again

    assert sends_at_submit[:2] == [0, 0]  # the take's batches queued before its first output was sent

    assert embedder.calls == [settings.embed_batch, len(chunks) - settings.embed_batch]  # one take, 2 batches
    assert embedder.second_saw_a_send is True  # sent before the second batch's model call ended
    assert embedder.second_saw_the_first_acked is True  # acked then too: their offsets may commit (w-a 23)
    out = [EMBEDDING.decode(m["value"]) for m in sent.on(names.embeddings)]
    assert [e.chunk_id for e in out] == [c.chunk_id for c in chunks]  # in the take's order
    assert [e.vector for e in out] == [to_bytes(v) for v in HashingEmbedder().embed([c.text for c in chunks])]


def test_the_app_commits_at_the_configured_interval() -> None:
    """Each transactional hop waits for a commit: RAG_COMMIT_INTERVAL_S reaches Faust."""
    assert app.conf.broker_commit_interval == settings.commit_interval_s == 0.1


class PoisonedEmbedder(HashingEmbedder):
    """Fails on any batch that holds a text with the poison word, as a model may on odd input."""

    def embed(self, texts: Any) -> Any:
        if any("poison" in t for t in texts):
            raise ValueError("the model cannot embed this text")
        return super().embed(texts)


async def test_embed_dead_letters_only_the_chunk_the_model_fails_on(sent: Any, fakes: Any) -> None:
    embedder = PoisonedEmbedder()
    services.override(embedder=embedder, store=fakes["store"])
    good = chunk_document(RawDocument("acme", "a.md", 3, text=TEXT), embedder, size=20, overlap=4)
    bad = chunk_document(RawDocument("acme", "b.md", 1, text="a poison pill"), embedder, size=20, overlap=4)
    assert len(good) > 1 and len(bad) == 1
    async with embed_chunks.test_context() as agent:
        for c in [good[0], *bad, *good[1:]]:  # one model batch
            await agent.put(CHUNK.encode(c), key=c.key.encode())
        await settle()

    out = [EMBEDDING.decode(m["value"]) for m in sent.on(names.embeddings)]
    assert [e.chunk_id for e in out] == [c.chunk_id for c in good]
    expected = HashingEmbedder().embed([c.text for c in good])
    assert [e.vector for e in out] == [to_bytes(row) for row in expected]
    dead = [DEADLETTER.decode(m["value"]) for m in sent.on(names.deadletter)]
    assert [(d.stage, d.error_class, CHUNK.decode(d.value).chunk_id) for d in dead] == [
        ("embed", "PermanentError", bad[0].chunk_id)
    ]
    assert "the model cannot embed this text" in dead[0].message


async def test_index_applies_versions_cleans_leftovers_and_deletes(sent: Any, fakes: Any) -> None:
    emb, store = fakes["embedder"], fakes["store"]
    v1 = upserts(RawDocument("acme", "a.md", 1, text=TEXT), emb)
    v2 = upserts(RawDocument("acme", "a.md", 2, text="just a few words now"), emb)
    async with index_embeddings.test_context() as agent:
        for u in v1:
            await agent.put(EMBEDDING.encode(u), key=b"acme/a.md")
        await settle()
        assert {p.id for p in await store.points("acme")} == {u.chunk_id for u in v1}
        for u in [*v2, *v1]:  # v1 replayed after v2: stale
            await agent.put(EMBEDDING.encode(u), key=b"acme/a.md")
        await settle()
        points = await store.points("acme")
        assert [(p.id, p.payload["version"]) for p in points] == [(v2[0].chunk_id, 2)]
        hits = await store.search("acme", from_bytes(v2[0].vector, 384).tolist(), 3)
        assert hits[0].payload["text"] == "just a few words now"
        for u in upserts(RawDocument("acme", "a.md", 3, op=DELETE), emb):
            await agent.put(EMBEDDING.encode(u), key=b"acme/a.md")
        await settle()
        assert await store.points("acme") == []


async def test_index_makes_cached_answers_stale_after_writes_not_after_stale_drops(sent: Any, fakes: Any) -> None:
    emb, cache = fakes["embedder"], fakes["cache"]
    v1 = upserts(RawDocument("acme", "a.md", 1, text=TEXT), emb)
    await cache.put("acme", "q", b"answer before the write")
    async with index_embeddings.test_context() as agent:
        for u in v1:
            await agent.put(EMBEDDING.encode(u), key=b"acme/a.md")
        await settle()
        written = cache.generations["acme"]
        assert written >= 1 and await cache.get("acme", "q") is None
        for u in v1:  # a replay: dropped, nothing written
            await agent.put(EMBEDDING.encode(u), key=b"acme/a.md")
        await settle()
        assert cache.generations["acme"] == written
        for u in upserts(RawDocument("acme", "a.md", 2, op=DELETE), emb):
            await agent.put(EMBEDDING.encode(u), key=b"acme/a.md")
        await settle()
        assert cache.generations["acme"] == written + 1


async def test_embed_does_not_emit_a_replayed_chunk_twice(sent: Any, fakes: Any) -> None:
    chunks = chunk_document(RawDocument("acme", "a.md", 3, text=TEXT), fakes["embedder"], size=20, overlap=4)
    newer = chunk_document(RawDocument("acme", "a.md", 4, text=TEXT), fakes["embedder"], size=20, overlap=4)
    async with embed_chunks.test_context() as agent:
        for c in [*chunks, *chunks, *newer]:  # the second pass is a replay after a crash
            await agent.put(CHUNK.encode(c), key=b"acme/a.md")
            await settle(0.02)
        await settle()
    out = [EMBEDDING.decode(m["value"]) for m in sent.on(names.embeddings)]
    assert [(e.version, e.chunk_index) for e in out] == [(c.version, c.chunk_index) for c in [*chunks, *newer]]


async def test_index_dead_letters_only_the_document_the_store_refuses(sent: Any, fakes: Any) -> None:
    emb, store = fakes["embedder"], fakes["store"]
    good = upserts(RawDocument("acme", "good.md", 1, text=TEXT), emb)
    # same tenant and version, so one upsert call at first; its 8-dim vectors do not fit the
    # 384-dim collection and the real qdrant-client refuses the whole call
    bad = [
        dataclasses.replace(u, vector=to_bytes(np.ones(8, dtype=np.float32)), dim=8)
        for u in upserts(RawDocument("acme", "bad.md", 1, text="a short bad document"), emb)
    ]
    async with index_embeddings.test_context() as agent:
        for u in [*good, *bad]:  # one batch
            await agent.put(EMBEDDING.encode(u), key=f"acme/{u.doc_id}".encode())
        await settle()
    assert {p.id for p in await store.points("acme")} == {u.chunk_id for u in good}
    dead = [DEADLETTER.decode(m["value"]) for m in sent.on(names.deadletter)]
    assert sorted(EMBEDDING.decode(d.value).chunk_id for d in dead) == sorted(u.chunk_id for u in bad)
    assert {(d.stage, d.error_class) for d in dead} == {("index", "PermanentError")}
    assert all("vector store refused the write" in d.message for d in dead)


async def test_embed_forwards_a_retag_once_and_dead_letters_one_it_cannot_vouch_for(sent: Any, fakes: Any) -> None:
    doc = RawDocument("acme", "a.md", 3, text=TEXT)
    chunks = chunk_document(doc, fakes["embedder"], size=20, overlap=4)
    state = DocState(3, False, "h", len(chunks))
    retag = retag_chunk(dataclasses.replace(doc, version=4), state, "h")
    orphan = retag_chunk(RawDocument("acme", "never.md", 4, text=TEXT), state, "h")
    calls = len(fakes["embedder"].calls)
    async with embed_chunks.test_context() as agent:
        for c in chunks:
            await agent.put(CHUNK.encode(c), key=b"acme/a.md")
        await settle()
        calls = len(fakes["embedder"].calls)
        for c, headers in ((retag, retag_headers(3)), (retag, retag_headers(3)), (orphan, retag_headers(3))):
            await agent.put(CHUNK.encode(c), key=c.key.encode(), headers=headers)  # the second: a replay
        await settle()
    assert len(fakes["embedder"].calls) == calls  # no model call for a retag
    out = [m for m in sent.on(names.embeddings) if EMBEDDING.decode(m["value"]).version == 4]
    assert len(out) == 1 and dict(out[0]["headers"]) == {"rag-retag": b"3"}
    record = EMBEDDING.decode(out[0]["value"])
    assert (record.doc_id, record.dim, record.vector, record.chunk_count) == ("a.md", 0, b"", len(chunks))
    assert embedded_docs["acme/a.md"] == [4, len(chunks), False]
    (dead,) = [DEADLETTER.decode(m["value"]) for m in sent.on(names.deadletter)]
    assert dead.stage == "embed" and "run verify --repair" in dead.message and dead.key == b"acme/never.md"


async def test_index_retags_a_stored_document_and_dead_letters_a_retag_with_points_missing(
    sent: Any, fakes: Any
) -> None:
    emb, store = fakes["embedder"], fakes["store"]
    v1 = upserts(RawDocument("acme", "a.md", 1, text=TEXT), emb)
    retag = dataclasses.replace(v1[0], version=2, chunk_id="", text="", content_hash="h", vector=b"", dim=0)
    wrong = dataclasses.replace(retag, version=3, chunk_count=len(v1) + 1)
    async with index_embeddings.test_context() as agent:
        for u in v1:
            await agent.put(EMBEDDING.encode(u), key=b"acme/a.md")
        await settle()
        before = {p.id: p.payload for p in await store.points("acme")}
        await agent.put(EMBEDDING.encode(retag), key=b"acme/a.md", headers=retag_headers(1))
        await settle()
        after = {p.id: p.payload for p in await store.points("acme")}
        assert after.keys() == before.keys() and {p["version"] for p in after.values()} == {2}
        assert all(after[i]["content_hash"] == before[i]["content_hash"] for i in after)
        assert applied_versions["acme/a.md"] == [2, False]
        await agent.put(EMBEDDING.encode(wrong), key=b"acme/a.md", headers=retag_headers(2))  # a chunk too many
        await settle()
    assert {p.payload["version"] for p in await store.points("acme")} == {2}
    assert applied_versions["acme/a.md"] == [2, False]
    (dead,) = [DEADLETTER.decode(m["value"]) for m in sent.on(names.deadletter)]
    assert dead.stage == "index" and f"holds {len(v1)} of the {len(v1) + 1} points" in dead.message
