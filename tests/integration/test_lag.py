"""`rag-streams lag`, the worker's lag gauges, and the pipeline metrics, on the real broker and model.

One run: a backlog published before any worker ran; a worker without the chunk role (the backlog
stays, its leader exports it); then a worker with every stage drains it. Each step checks the
command's JSON and the worker's /metrics against what was published.
"""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from rag_streams.adapters.kafka_admin import create_topics
from rag_streams.adapters.kafka_local import LocalKafka
from rag_streams.adapters.redis_local import RedisServer
from rag_streams.rules.lag import pipeline_stages

from support.pipeline import Pipeline

pytestmark = pytest.mark.integration
TENANT = "acme"
N = 40
Labels = frozenset[tuple[str, str]]


async def lag_cli(pipeline: Pipeline, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rag_streams.cli",
        "lag",
        *args,
        env=pipeline.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def lag_json(pipeline: Pipeline, interval: float = 0) -> dict[str, Any]:
    return dict(orjson.loads(await lag_cli(pipeline, "--json", "--interval", str(interval))))


def stage(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in report["stages"] if s["stage"] == name)


async def samples(pipeline: Pipeline, name: str) -> dict[Labels, float]:
    """Every sample of one metric on the worker's /metrics, by label set."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.get(f"http://127.0.0.1:{pipeline.port}/metrics") as resp,
    ):
        text = await resp.text()
    out: dict[Labels, float] = {}
    for m in re.finditer(rf"^{name}(?:{{([^}}]*)}})? (\S+)$", text, re.M):
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        out[labels] = float(m.group(2))
    return out


def by(values: dict[Labels, float], **want: str) -> float:
    return sum(v for labels, v in values.items() if set(want.items()) <= labels)


async def test_lag_backlog_drain_and_pipeline_metrics(
    kafka: LocalKafka, redis_server: RedisServer, tmp_path: Path
) -> None:
    pipeline = Pipeline(kafka, tmp_path, redis_server)
    pipeline.env["RAG_LAG_INTERVAL_S"] = "1"
    pipeline.env["RAG_LOG_FORMAT"] = "json"
    raw = pipeline.topics.raw
    await create_topics(pipeline.settings)
    texts = {f"note-{i:02d}.md": f"Note {i}: consumer lag counts what a group has not processed yet." for i in range(N)}
    async with pipeline.producer() as producer:
        versions = {doc_id: await producer.upsert(TENANT, doc_id, text) for doc_id, text in texts.items()}
    published_at = time.time()

    # 1. No worker ever ran: no committed offsets, the lag counts from the log start.
    report = await lag_json(pipeline, interval=1)
    chunk = stage(report, "chunk")
    raw_parts = [p for p in report["partitions"] if p["topic"] == raw]
    assert chunk["lag"] == N, report
    assert len(raw_parts) == 3 and sum(p["end"] for p in raw_parts) == N
    assert all(p["committed"] is None and p["lag"] == p["end"] - p["log_start"] for p in raw_parts)
    assert chunk["consumers"] == 0 and chunk["throughput"] == 0.0 and chunk["incoming"] == 0.0
    assert chunk["drain_seconds"] is None and report["drain_seconds"] is None  # lag, and nobody consuming
    assert chunk["advised_replicas"] == 1
    assert stage(report, "embed")["lag"] == 0 and stage(report, "index")["lag"] == 0
    print(await lag_cli(pipeline, "--interval", "1"))

    try:
        await _run_workers(pipeline, versions, published_at)
    finally:
        pipeline.worker.stop()


async def _run_workers(pipeline: Pipeline, versions: dict[str, int], published_at: float) -> None:
    raw, group = pipeline.topics.raw, pipeline.settings.app_id
    # 2. A worker without the chunk role: the backlog stays and its leader exports it exactly.
    pipeline.worker.start("embed,index")
    await pipeline.wait_for(pipeline._healthy, timeout=120, what="worker HTTP API")

    async def backlog_exported() -> bool:
        lags = await samples(pipeline, "rag_kafka_consumer_lag")
        drain = await samples(pipeline, "rag_drain_time_seconds")
        return by(lags, topic=raw) == N and by(drain, group=group) == math.inf

    await pipeline.wait_for(backlog_exported, timeout=120, what="the raw backlog on /metrics")
    lags = await samples(pipeline, "rag_kafka_consumer_lag")
    consumed = len(pipeline_stages(pipeline.settings))  # every stage's input topics, the bulk lane's too
    assert len(lags) == 3 * consumed and {dict(labels)["group"] for labels in lags} == {group}
    assert {dict(labels)["partition"] for labels in lags} == {"0", "1", "2"}
    report = await lag_json(pipeline)
    assert stage(report, "chunk")["lag"] == N and stage(report, "chunk")["consumers"] == 0
    assert stage(report, "embed")["consumers"] == 1 and stage(report, "index")["consumers"] == 1
    pipeline.worker.stop()

    # 3. Every stage: the backlog drains; lag reaches 0 in the command and on /metrics.
    started_at = time.time()
    pipeline.worker.start()
    await pipeline.wait_for(pipeline._healthy, timeout=120, what="worker HTTP API")
    want = set(versions.items())

    async def indexed() -> bool:
        return await pipeline.holds_exactly(TENANT, want)

    await pipeline.wait_for(indexed, timeout=300, what="the backlog to be indexed")

    async def drained() -> bool:
        return int((await lag_json(pipeline))["total_lag"]) == 0

    await pipeline.wait_for(drained, timeout=120, what="`rag-streams lag` to report no lag")
    report = await lag_json(pipeline)
    assert all(p["lag"] == 0 for p in report["partitions"]), report
    assert all(p["committed"] == p["end"] for p in report["partitions"] if p["topic"] == raw)
    # Transactional topics end with a commit marker after the last committed record: still no lag.
    chunks_parts = [p for p in report["partitions"] if p["topic"] == pipeline.topics.chunks]
    assert any(p["end"] == p["committed"] + 1 for p in chunks_parts), report
    assert report["drain_seconds"] == 0.0
    assert all(s["advised_replicas"] == 1 for s in report["stages"])

    async def exported_zero() -> bool:
        lags = await samples(pipeline, "rag_kafka_consumer_lag")
        drain = await samples(pipeline, "rag_drain_time_seconds")
        consumed = len(pipeline_stages(pipeline.settings))
        return len(lags) == 3 * consumed and sum(lags.values()) == 0 and by(drain, group=group) == 0

    await pipeline.wait_for(exported_zero, timeout=60, what="rag_kafka_consumer_lag to reach 0 on /metrics")

    # 4. The pipeline metrics moved with the work done (this worker did all of it).
    chunks = len(await pipeline.read_topic(pipeline.topics.chunks))
    assert chunks == N  # one short chunk per note
    processed = await samples(pipeline, "rag_messages_processed_total")
    assert [by(processed, stage=s) for s in ("chunk", "embed", "index")] == [N, chunks, chunks]
    latency = await samples(pipeline, "rag_pipeline_latency_seconds_count")
    assert [by(latency, stage=s) for s in ("chunk", "embed", "index")] == [N, chunks, chunks]
    latency_sum = await samples(pipeline, "rag_pipeline_latency_seconds_sum")
    assert by(latency_sum, stage="index") >= by(latency_sum, stage="embed") >= by(latency_sum, stage="chunk") > 0
    # Latency runs from the raw message's produce time: every document waited at least from
    # publishing to the start of this worker, so no observation falls in a bucket below that.
    waited = started_at - published_at
    buckets = await samples(pipeline, "rag_pipeline_latency_seconds_bucket")
    below = [float(le) for labels in buckets if (le := dict(labels)["le"]) != "+Inf" and float(le) < waited]
    assert below, f"waited only {waited:.1f}s"
    for s in ("chunk", "embed", "index"):
        at_cutoff = [v for labels, v in buckets.items() if _bucket(labels, s) == max(below)]
        assert at_cutoff == [0.0], (s, waited)
    assert by(await samples(pipeline, "rag_chunks_indexed_total"), tenant=TENANT) == chunks
    assert sum((await samples(pipeline, "rag_embed_batch_size_sum")).values()) == chunks
    assert 1 <= sum((await samples(pipeline, "rag_embed_batch_size_count")).values()) <= chunks
    assert sum((await samples(pipeline, "rag_embed_skipped_unchanged_total")).values()) == 0
    assert 1 <= sum((await samples(pipeline, "rag_vectorstore_upsert_seconds_count")).values()) <= chunks
    assert sum((await samples(pipeline, "rag_deadletter_total")).values()) == 0
    assert sum((await samples(pipeline, "rag_stale_writes_dropped_total")).values()) == 0

    queries = sum((await samples(pipeline, "rag_vectorstore_query_time_seconds_count")).values())
    status, body = await pipeline.api(
        "POST",
        f"/v1/tenants/{TENANT}/search",
        {"query": "What does consumer lag count?", "k": 3},
        headers={"X-Request-ID": "lag-test-search"},
    )
    assert status == 200 and body["results"], body
    assert sum((await samples(pipeline, "rag_vectorstore_query_time_seconds_count")).values()) > queries

    # 5. The search left one structured access-log line.
    async def access_logged() -> bool:
        for line in pipeline.worker.log.read_text().splitlines():
            if line.startswith("{") and '"lag-test-search"' in line:
                entry = orjson.loads(line)
                assert entry["tenant"] == TENANT and entry["duration_ms"] >= 0, entry
                assert entry["message"] == f"POST /v1/tenants/{TENANT}/search 200"
                return True
        return False

    await pipeline.wait_for(access_logged, timeout=30, what="the search's JSON access-log line")


def _bucket(labels: Labels, stage_name: str) -> float | None:
    """The upper bound of a finite latency bucket of the stage, else None."""
    d = dict(labels)
    return float(d["le"]) if d.get("stage") == stage_name and d.get("le") != "+Inf" else None
