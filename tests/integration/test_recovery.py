"""A worker SIGKILLed and restarted at once processes again without waiting out its old session.

With dynamic membership the restarted worker's JoinGroup waits until the broker expires the killed
member (``RAG_SESSION_TIMEOUT_S``): its partitions stay assigned to a process that no longer exists.
With ``RAG_GROUP_INSTANCE_ID`` (static membership, KIP-345) the broker recognises the same instance
and hands its partitions back at once; its transactional producers fence the killed ones, so
exactly-once holds. The test prints restart → first record processed for both and bounds only the
static one, generously: below the session timeout the dynamic one has to wait out. (The rest of
the static figure is process start, dominated by importing torch/transformers/sentence-transformers
and loading the model on a thread from the start, which overlaps joining the group and restoring the
tables: docs/operations.md, "Restart after a crash", has the breakdown.)
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

pytestmark = pytest.mark.integration

TENANT = "acme"
SESSION_TIMEOUT_S = 45.0  # Faust's and the project's default


async def _indexed(pipeline: Any, doc_id: str, version: int) -> bool:
    try:
        points = await pipeline.points(TENANT)
    except AssertionError:  # the tenant has no collection yet
        return False
    return any(p["doc_id"] == doc_id and p["version"] == version for p in points)


async def _kill_restart_and_time(pipeline: Any, n: int) -> tuple[float, float]:
    """SIGKILL the worker, restart it at once, publish a document: seconds until the new process
    processed its first record (any stage), and until the document is indexed."""
    pipeline.worker.stop(signal.SIGKILL)
    started = time.monotonic()
    pipeline.worker.start()
    async with pipeline.producer() as p:
        await p.upsert(TENANT, f"after-restart-{n}", f"Written right after restart {n}.", version=1)
    first: float | None = None
    while not await _indexed_or_down(pipeline, f"after-restart-{n}"):
        if first is None and await _processed_any(pipeline):
            first = time.monotonic() - started
        if time.monotonic() - started > 180:
            raise AssertionError(f"restart {n}: nothing processed within 180 s")
        await asyncio.sleep(0.2)
    indexed = time.monotonic() - started
    return (first if first is not None else indexed), indexed


async def _processed_any(pipeline: Any) -> bool:
    try:
        return await pipeline.metric("rag_messages_processed_total") > 0  # the new process's counters
    except Exception:  # noqa: BLE001 - the API is not up yet
        return False


async def _indexed_or_down(pipeline: Any, doc_id: str) -> bool:
    if not pipeline.worker.alive():
        raise AssertionError(f"worker exited; log:\n{pipeline.worker.log.read_text()[-3000:]}")
    try:
        return await _indexed(pipeline, doc_id, 1)
    except Exception:  # noqa: BLE001 - the API is not up yet
        return False


async def test_a_killed_worker_restarted_with_static_membership_resumes_before_its_session_expires(
    idle_pipeline: Any,
) -> None:
    pipeline = idle_pipeline
    pipeline.worker.env["RAG_SESSION_TIMEOUT_S"] = str(SESSION_TIMEOUT_S)
    timings: dict[str, tuple[float, float]] = {}
    for mode, instance in (("dynamic", None), ("static", "rag-worker-0")):
        if instance is not None:
            pipeline.worker.env["RAG_GROUP_INSTANCE_ID"] = instance
        pipeline.worker.start()
        await pipeline.wait_for(pipeline._healthy, timeout=180, what="worker HTTP API")
        async with pipeline.producer() as p:
            await p.upsert(TENANT, f"before-{mode}", f"Indexed before the {mode} kill.", version=1)
        await pipeline.wait_for(lambda m=mode: _indexed(pipeline, f"before-{m}", 1), timeout=180, what="first doc")
        timings[mode] = await _kill_restart_and_time(pipeline, len(timings))
        pipeline.worker.stop(signal.SIGKILL)
        if instance is None:  # let the dynamic member's session expire before the static run
            await asyncio.sleep(SESSION_TIMEOUT_S + 2)
    for mode, (first, indexed) in timings.items():
        print(
            f"\n{mode} membership (session timeout {SESSION_TIMEOUT_S:.0f} s): restart -> first record processed "
            f"{first:.1f} s, -> the document published at the restart indexed {indexed:.1f} s"
        )
    assert timings["static"][0] < SESSION_TIMEOUT_S, timings  # did not wait for the killed member to expire

    pipeline.worker.start()  # exactly-once held across both kills: each document indexed once, nothing lost
    await pipeline.wait_for(pipeline._healthy, timeout=180, what="worker HTTP API")
    expected = {(f"{prefix}-{m}", 1) for prefix in ("before",) for m in ("dynamic", "static")}
    expected |= {(f"after-restart-{n}", 1) for n in range(2)}
    await pipeline.wait_for(lambda: pipeline.holds_exactly(TENANT, expected), timeout=120, what="exact index")
    chunk_keys, embed_keys = await pipeline.committed_chunk_keys()
    assert [k for k, n in chunk_keys.items() if n > 1] == []
    assert [k for k, n in embed_keys.items() if n > 1] == []
    pipeline.worker.stop()  # SIGTERM: the store, cache and model thread are closed after the agents stopped
    assert "services closed" in pipeline.worker.log.read_text().rsplit("Stopping", 1)[-1]
