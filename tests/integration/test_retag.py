"""An unchanged document re-published is a retag: one record on the chunks topic, no model run, its
stored points (same vectors) at the new version; edits, deletes and read-your-writes after it work."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest

from rag_streams.adapters.codecs import CHUNK
from rag_streams.rules.records import RETAG_HEADER

pytestmark = pytest.mark.integration

DOCS = ["chess-openings.md", "log-compaction.md"]
QUERIES = ["which chess opening"]


def corpus() -> dict[str, str]:
    folder = resources.files("rag_streams") / "sample_corpus"
    return {name: (folder / name).read_text() for name in DOCS}


async def vectors(pipeline: Any) -> dict[str, list[float]]:
    """Every point's vector, through the admin API (what a backup reads)."""
    name = f"{pipeline.settings.collection_prefix}_acme__v1"
    status, body = await pipeline.api("GET", f"/v1/tenants/acme/collections/{name}/points?limit=1000")
    assert status == 200, body
    return {p["id"]: p["vector"] for p in body["points"]}


async def test_an_unchanged_republish_is_one_retag_then_edits_and_deletes_still_apply(pipeline: Any) -> None:
    docs = corpus()
    async with pipeline.producer() as p:
        for doc_id, text in docs.items():
            await p.upsert("acme", doc_id, text, version=1)

    async def at_versions(want: dict[str, int]) -> bool:
        return await pipeline.holds_exactly("acme", set(want.items()))

    await pipeline.wait_for(lambda: at_versions(dict.fromkeys(docs, 1)), timeout=240, what="version 1 indexed")
    points_v1 = {pt["id"]: pt for pt in await pipeline.points("acme")}
    vectors_v1 = await vectors(pipeline)
    model_s = await pipeline.metric("rag_embed_model_seconds_total")
    embedded = await pipeline.metric("rag_embed_batch_size_sum")

    # 1. The same text again as version 2: a retag per document
    async with pipeline.producer() as p:
        for doc_id, text in docs.items():
            await p.upsert("acme", doc_id, text, version=2)
    await pipeline.wait_for(lambda: at_versions(dict.fromkeys(docs, 2)), timeout=120, what="version 2 retagged")
    points_v2 = {pt["id"]: pt for pt in await pipeline.points("acme")}
    assert points_v2.keys() == points_v1.keys()
    for pid, pt in points_v2.items():  # the slot's own keys stay, the version moved
        assert pt["version"] == 2
        assert (pt["chunk_index"], pt["content_hash"]) == (
            points_v1[pid]["chunk_index"],
            points_v1[pid]["content_hash"],
        )
    assert await vectors(pipeline) == vectors_v1  # the same vectors
    assert await pipeline.metric("rag_embed_model_seconds_total") == model_s  # the model did not run
    assert await pipeline.metric("rag_embed_batch_size_sum") == embedded
    assert await pipeline.metric("rag_retagged_total") == 3 * len(docs)  # chunk, embed, index: once each
    records = [r for r in await pipeline.read_topic(pipeline.topics.chunks) if CHUNK.decode(r.value).version == 2]
    assert len(records) == len(docs)  # ONE chunks-topic record per re-published document
    assert all(dict(r.headers).get(RETAG_HEADER) == b"1" for r in records)
    code, out = await pipeline.verify("acme")
    assert code == 0 and "no drift" in out, out

    # 2. Read-your-writes sees the retagged version
    question = {"query": QUERIES[0], "k": 3, "min_version": dict.fromkeys(docs, 2)}
    status, body = await pipeline.api("POST", "/v1/tenants/acme/search", question)
    assert status == 200 and "pending" not in body and body["results"], body
    assert {r["version"] for r in body["results"]} == {2}

    # 3. An edit after the retag: the changed chunks are embedded, the rest reused, nothing older left
    chess, compaction = DOCS
    edited = docs[chess] + "\n\nA closing note on the Zukertort opening and its fianchetto."
    async with pipeline.producer() as p:
        await p.upsert("acme", chess, edited, version=3)
    await pipeline.wait_for(lambda: at_versions({chess: 3, compaction: 2}), timeout=240, what="the edit indexed")
    assert await pipeline.metric("rag_embed_batch_size_sum") > embedded
    hits = await pipeline.search("acme", "Zukertort opening fianchetto", k=1)
    assert (hits[0]["doc_id"], hits[0]["version"]) == (chess, 3)

    # 4. A delete after a retag, and a retag of the edited document
    async with pipeline.producer() as p:
        await p.delete("acme", compaction, version=4)
        await p.upsert("acme", chess, edited, version=5)
    await pipeline.wait_for(lambda: at_versions({chess: 5}), timeout=120, what="the delete and the second retag")
    assert await pipeline.metric("rag_retagged_total") == 3 * (len(docs) + 1)
    code, out = await pipeline.verify("acme")
    assert code == 0 and "no drift" in out, out
