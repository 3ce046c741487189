"""Index health on a real pipeline: `GET /v1/tenants/{t}/stats` and the gauges agree with what was
indexed, follow a delete, and report the mismatch when points vanish behind the pipeline's back."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rag_streams.adapters.kafka_local import LocalKafka
from rag_streams.adapters.redis_local import RedisServer

from support.pipeline import Pipeline

pytestmark = pytest.mark.integration

DOCS = ["chess-openings.md", "log-compaction.md", "circuit-breakers.md"]


async def gauges(pipeline: Pipeline, tenant: str) -> tuple[float | None, float | None]:
    """(rag_index_points, rag_index_expected_points) of the tenant on the worker's /metrics, asked for
    by name (``name[]``: only those samples come back)."""
    asked = "name[]=rag_index_points&name[]=rag_index_expected_points"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.get(f"http://127.0.0.1:{pipeline.port}/metrics?{asked}") as resp,
    ):
        text = await resp.text()
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert samples <= {"rag_index_points", "rag_index_expected_points"}, samples

    def sample(name: str) -> float | None:
        m = re.search(rf'^{name}{{tenant="{tenant}"}} (\S+)$', text, re.M)
        return float(m.group(1)) if m else None

    return sample("rag_index_points"), sample("rag_index_expected_points")


async def test_stats_and_gauges_report_the_index_and_a_mismatch(
    kafka: LocalKafka, redis_server: RedisServer, tmp_path: Path
) -> None:
    pipeline = Pipeline(kafka, tmp_path, redis_server)
    pipeline.env["RAG_HEALTH_INTERVAL_S"] = "1"
    await pipeline.start()
    try:
        await run(pipeline)
    finally:
        pipeline.worker.stop()
    assert pipeline.crashes() == []
    assert "index health check failed" not in pipeline.worker.log.read_text()  # every check ran through


async def run(pipeline: Pipeline) -> None:
    folder = resources.files("rag_streams") / "sample_corpus"
    async with pipeline.producer() as p:
        for doc_id in DOCS:
            await p.upsert("acme", doc_id, (folder / doc_id).read_text(), version=1)
    indexed = {(doc_id, 1) for doc_id in DOCS}
    await pipeline.wait_for(lambda: pipeline.holds_exactly("acme", indexed), timeout=240, what="3 documents indexed")
    points = await pipeline.points("acme")
    chunks = {doc_id: sum(1 for pt in points if pt["doc_id"] == doc_id) for doc_id in DOCS}
    n = len(points)
    last: dict[str, Any] = {}

    async def stats_are(**want: Any) -> bool:
        status, body = await pipeline.api("GET", "/v1/tenants/acme/stats")
        last.update(status=status, body=body)
        return status == 200 and all(body[k] == v for k, v in want.items())

    async def gauges_are(points: int, expected: int) -> bool:
        return await gauges(pipeline, "acme") == (points, expected)

    # 1. Everything indexed: stored = expected = the chunks, from the one worker that holds every partition.
    await pipeline.wait_for(
        lambda: stats_are(points=n, expected_points=n, mismatch=0, documents=3, deleted_documents=0, complete=True),
        timeout=60,
        what=f"stats to report {n} points as expected: last {last}",
    )
    body = last["body"]
    assert body["partitions"] == [0, 1, 2]
    assert body["collection"] == "rag_acme__v1" and body["generation"] == 1
    assert body["model"].endswith("all-MiniLM-L6-v2") and body["dim"] == 384
    await pipeline.wait_for(lambda: gauges_are(n, n), timeout=30, what="the gauges to follow")

    # 2. A delete through the pipeline: both counts fall, no mismatch.
    async with pipeline.producer() as p:
        await p.delete("acme", DOCS[0], version=2)
    n -= chunks[DOCS[0]]
    await pipeline.wait_for(
        lambda: stats_are(points=n, expected_points=n, mismatch=0, documents=2, deleted_documents=1),
        timeout=120,
        what=f"stats to follow the delete: last {last}",
    )

    # 3. A document's points deleted behind the pipeline's back (the admin API, not a document delete):
    #    the store holds fewer than the version tables expect.
    lost = chunks[DOCS[1]]
    status, answer = await pipeline.api(
        "POST", f"/v1/tenants/acme/collections/{body['collection']}/delete", {"doc_id": DOCS[1]}
    )
    assert status == 200, answer
    assert await stats_are(points=n - lost, expected_points=n, mismatch=-lost, documents=2), last
    await pipeline.wait_for(lambda: gauges_are(n - lost, n), timeout=30, what="the gauges to show the mismatch")

    # 4. Bad input answers JSON errors.
    status, err = await pipeline.api("GET", "/v1/tenants/nobody/stats")
    assert status == 404 and err["error"] == "not_found", err
    status, err = await pipeline.api("GET", "/v1/tenants/Not_A_Tenant!/stats")
    assert status == 400 and err["error"] == "bad_request", err
