"""The canary (rag_streams/observability/canary.py) against a real worker: `rag-streams canary` publishes its
document to the reserved tenant and finds it cited; other tenants' points are untouched; the
worker's canary task exports its success and latency."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest

from rag_streams.observability.canary import ANSWER_DOC, DISTRACTOR_DOC

pytestmark = pytest.mark.integration
TENANT = "canaryneighbour"


async def canary_cli(pipeline: Any, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rag_streams.cli",
        "canary",
        *args,
        env=pipeline.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode() + err.decode()


async def test_the_canary_cites_its_document_and_touches_no_other_tenant(pipeline: Any) -> None:
    async with pipeline.producer() as p:
        await p.upsert(TENANT, "manual", "How to reset the router: hold the button for ten seconds.", version=1)
    await pipeline.wait_for(lambda: pipeline.holds_exactly(TENANT, {("manual", 1)}), timeout=180, what="indexing")
    neighbour = sorted((pt["id"], pt["version"]) for pt in await pipeline.points(TENANT))

    code, out = await canary_cli(pipeline, "--timeout", "120")
    print(out.strip())
    assert code == 0, out
    assert out.startswith("canary ok: rag-canary/canary-answer v") and "cited at rank 1" in out
    first = int(out.split(" v", 1)[1].split()[0])

    code, out = await canary_cli(pipeline, "--timeout", "120", "--json")  # a second run: a new version
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and result["ok"] is True and result["version"] > first and result["latency_s"] > 0, out
    print(out.strip())

    canary = await pipeline.points("rag-canary")  # the canary's two documents, replaced each run
    assert {(pt["doc_id"], pt["version"] == result["version"]) for pt in canary} >= {(ANSWER_DOC, True)}
    assert {pt["doc_id"] for pt in canary} == {ANSWER_DOC, DISTRACTOR_DOC}
    assert sorted((pt["id"], pt["version"]) for pt in await pipeline.points(TENANT)) == neighbour

    code, out = await canary_cli(pipeline, "--timeout", "0")
    assert code == 2 and out.count("\n") == 1 and "--timeout" in out  # one line, exit 2


async def test_the_worker_task_exports_the_canary_and_a_dead_pipeline_fails_it(pipeline: Any) -> None:
    pipeline.worker.stop()
    pipeline.worker.env = {**pipeline.worker.env, "RAG_CANARY_INTERVAL_S": "1", "RAG_CANARY_TIMEOUT_S": "60"}
    await pipeline.restart()

    async def succeeded() -> bool:
        return await pipeline.metric("rag_canary_success") == 1

    await pipeline.wait_for(succeeded, timeout=180, what="a successful canary run")
    latency = await pipeline.metric("rag_canary_latency_seconds")
    assert latency > 0 and await pipeline.metric("rag_canary_consecutive_failures") == 0
    print(f"worker canary: success 1, latency {latency:.3f} s")

    # the CLI against a query API that is not there: not cited, exit 1, one line
    dead = {**pipeline.env, "RAG_API_URL": "http://127.0.0.1:9"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rag_streams.cli", "canary", "--timeout", "2", env=dead, stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 1 and out.decode().startswith("canary FAILED: rag-canary/canary-answer v"), out
    print(out.decode().strip())
