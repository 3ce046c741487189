"""Fallback retrieval on a real worker (rag_streams/http/fallback.py): questions asked while the store
was up are still answered, from the index worker's fallback index, once the store stops answering."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytestmark = pytest.mark.integration
TENANT, UNASKED_TENANT = "fallbacktest", "fallbackquiet"
DOCS = {
    "harbour": "The lighthouse keepers guard the northern harbour at night with lamps and horns.",
    "bakery": "The village bakery opens at six in the morning and sells rye bread and cinnamon rolls.",
    "chess": "The queen's gambit is a chess opening in which White offers a pawn for central control.",
}
QUESTIONS = {"who guards the harbour at night": "harbour", "when does the bakery open": "bakery"}


async def ask(pipeline: Any, question: str, tenant: str = TENANT, **extra: Any) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    status, body = await pipeline.api("POST", f"/v1/tenants/{tenant}/search", {"query": question, "k": 1, **extra})
    assert status == 200, body
    return dict(body), time.monotonic() - started


async def fallback_answers(pipeline: Any) -> dict[str, float]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{pipeline.port}/metrics") as resp,
    ):
        text = await resp.text()
    found = re.finditer(r'^rag_fallback_answers_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    return {m.group(1): float(m.group(2)) for m in found}


async def test_popular_questions_are_answered_from_the_fallback_while_the_store_is_down(
    pipeline: Any, tmp_path: Path
) -> None:
    outage = tmp_path / "store-outage"
    pipeline.worker.stop()
    pipeline.worker.env = {
        **pipeline.worker.env,
        "RAG_VECTOR_STORE": "outage_store:build_switched",  # the real Edge store; hangs while the file exists
        "RAG_TEST_OUTAGE_FILE": str(outage),
        "PYTHONPATH": str(Path(__file__).parent),
        "RAG_SEARCH_TIMEOUT_S": "0.5",
        "RAG_BREAKER_FAILURES": "2",
        "RAG_BREAKER_RESET_S": "600",
        "RAG_REDIS_URL": "",  # no answer cache: what answers in the outage is the fallback index alone
    }
    await pipeline.restart()
    async with pipeline.producer() as p:
        for doc_id, text in DOCS.items():
            await p.upsert(TENANT, doc_id, text, version=1)
        await p.upsert(UNASKED_TENANT, "harbour", DOCS["harbour"], version=1)
    expected = {(d, 1) for d in DOCS}
    await pipeline.wait_for(lambda: pipeline.holds_exactly(TENANT, expected), timeout=180, what="indexing")
    await pipeline.wait_for(
        lambda: pipeline.holds_exactly(UNASKED_TENANT, {("harbour", 1)}), timeout=180, what="indexing"
    )

    before: dict[str, list[Any]] = {}
    for question, doc in QUESTIONS.items():
        for _ in range(3):  # popular: asked again and again
            body, _ = await ask(pipeline, question)
            assert (body["degraded"], body["source"], body["cached"]) == (False, "store", False), body
            assert body["results"][0]["doc_id"] == doc
        before[question] = [(r["doc_id"], r["chunk_index"], r["version"]) for r in body["results"]]
    assert await pipeline.metric("rag_fallback_chunks") >= 2
    counts = await fallback_answers(pipeline)

    outage.touch()  # the store stops answering
    try:
        latencies = []
        for _ in range(2):
            for question, doc in QUESTIONS.items():
                body, seconds = await ask(pipeline, question)
                latencies.append(round(seconds, 3))
                assert (body["degraded"], body["source"], body["cached"]) == (True, "fallback", False), body
                assert [(r["doc_id"], r["chunk_index"], r["version"]) for r in body["results"]] == before[question]
                assert body["results"][0]["text"] == DOCS[doc] and body["results"][0]["score"] > 0.3
        assert await pipeline.metric("rag_circuit_breaker_state") == 2  # open: the last answers did not wait
        print(f"fallback answer latencies (s), the first two waited for the store's timeout: {latencies}")

        # a tenant no search ever read: nothing to fall back on
        body, _ = await ask(pipeline, "who guards the harbour at night", tenant=UNASKED_TENANT)
        assert (body["results"], body["degraded"], body["source"]) == ([], True, "none")
        # a filter on a document no search returned: nothing either
        body, _ = await ask(pipeline, "what is the queen's gambit", filter={"doc_id": "chess"})
        assert (body["results"], body["degraded"], body["source"]) == ([], True, "none")

        after = await fallback_answers(pipeline)
        assert after.get("hit", 0) - counts.get("hit", 0) == 4
        assert after.get("empty", 0) - counts.get("empty", 0) == 2
    finally:
        outage.unlink()
