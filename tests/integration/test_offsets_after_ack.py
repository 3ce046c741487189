"""Offsets are committed only after the vector store acknowledged the write.

The worker's store accepts N points and then fails every write (a lasting outage). The worker
is killed with SIGKILL while it retries, and restarted with a healthy store: every document
must arrive. Had an offset been committed before its write returned, the restarted worker
would start past it and those chunks would be missing for good.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

OUTAGE_AFTER = 12


def text_for(i: int) -> str:
    words = " ".join(f"w{(i * 31 + j) % 97}" for j in range(450))
    return f"Document {i}. {words}"


async def test_a_store_outage_then_sigkill_skips_nothing(pipeline: Any) -> None:
    pipeline.worker.stop()
    healthy_env = dict(pipeline.worker.env)
    pipeline.worker.env = {
        **healthy_env,
        "RAG_VECTOR_STORE": "outage_store:build",
        "RAG_TEST_OUTAGE_AFTER_POINTS": str(OUTAGE_AFTER),
        "PYTHONPATH": str(Path(__file__).parent),
        "RAG_SEARCH_TIMEOUT_S": "0.5",
        "RAG_BREAKER_FAILURES": "2",
        "RAG_BREAKER_RESET_S": "600",
    }
    await pipeline.restart()
    n_docs = 20
    async with pipeline.producer() as p:
        for i in range(n_docs):
            await p.upsert("acme", f"doc-{i}", text_for(i), version=1)

    async def outage_reached() -> bool:
        return "injected vector store outage" in pipeline.worker.log.read_text()

    await pipeline.wait_for(outage_reached, timeout=240, what="the store outage to begin")
    started = time.monotonic()
    # meanwhile searches hang in the store: two time out, then the open breaker answers at once
    answers = []
    for _ in range(4):
        t0 = time.monotonic()
        status, body = await pipeline.api("POST", "/v1/tenants/acme/search", {"query": "w1 w2 w3", "k": 3})
        answers.append((status, body.get("degraded"), body.get("results"), time.monotonic() - t0))
    assert [(s, d, r) for s, d, r, _ in answers] == [(200, True, [])] * 4
    assert [t >= 0.5 for *_, t in answers] == [True, True, False, False], answers
    assert await pipeline.metric("rag_circuit_breaker_state") == 2  # open
    # several of Faust's commit intervals pass while the write is retried
    await asyncio.sleep(max(0.0, 8 - (time.monotonic() - started)))
    before_kill = await pipeline.points("acme")
    assert len(before_kill) >= OUTAGE_AFTER
    assert {pt["doc_id"] for pt in before_kill} != {f"doc-{i}" for i in range(n_docs)}  # the outage held some back
    pipeline.worker.stop(signal.SIGKILL)

    pipeline.worker.env = healthy_env
    await pipeline.restart()

    async def drained() -> bool:
        return await pipeline.holds_exactly("acme", {(f"doc-{i}", 1) for i in range(n_docs)})

    await pipeline.wait_for(drained, timeout=300, what="every document after the outage and the kill")
