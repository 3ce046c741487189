"""`rag-streams reindex` on the real broker, worker, model and embedded Qdrant, under live traffic.

The reindex runs as its own process: it reads rag.documents.latest, chunks and embeds, and writes
through the index worker's collection admin API (the worker holds the embedded store's lock).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from importlib import resources
from typing import Any

import pytest

from rag_streams.adapters.embedding import packaged_model_path
from rag_streams.rules.reindex import consumer_group

pytestmark = pytest.mark.integration

TENANT = "acme"
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def corpus() -> dict[str, str]:
    folder = resources.files("rag_streams") / "sample_corpus"
    return {p.name: p.read_text() for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(".md")}


def twenty_docs() -> dict[str, str]:
    docs = corpus()
    halves = {f"part/{name}": text[: len(text) // 2] for name, text in list(docs.items())[:8]}
    return {**docs, **halves}


async def index_docs(pipeline: Any, docs: dict[str, str]) -> None:
    async with pipeline.producer() as p:
        for doc_id, text in docs.items():
            await p.upsert(TENANT, doc_id, text, version=1)

    async def indexed() -> bool:
        return {pt["doc_id"] for pt in await pipeline.points(TENANT)} == set(docs)

    await pipeline.wait_for(indexed, timeout=300, what="the corpus indexed")


async def collections(pipeline: Any) -> list[dict[str, Any]]:
    status, body = await pipeline.api("GET", f"/v1/tenants/{TENANT}/collections")
    assert status == 200, body
    return list(body["collections"])


async def start_reindex(pipeline: Any, *args: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rag_streams.cli",
        "reindex",
        "--tenant",
        TENANT,
        *args,
        env={**pipeline.env, "RAG_REINDEX_GRACE_S": "0", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    return proc.returncode or 0, out.decode(errors="replace")


async def drift_free(pipeline: Any) -> None:
    async def no_drift() -> bool:
        return (await pipeline.verify(TENANT))[0] == 0

    await pipeline.wait_for(no_drift, timeout=300, what="verify to report no drift")


async def test_reindex_under_live_writes_and_queries_flips_to_v2_without_drift(pipeline: Any) -> None:
    docs = twenty_docs()
    assert len(docs) == 20
    await index_docs(pipeline, docs)
    assert [(c["name"], c["aliased"]) for c in await collections(pipeline)] == [(f"rag_{TENANT}__v1", True)]

    running = asyncio.Event()
    running.set()
    answers: list[tuple[int, int]] = []
    live_ops: list[str] = []

    async def query_loop() -> None:
        while running.is_set():
            status, body = await pipeline.api(
                "POST", f"/v1/tenants/{TENANT}/search", {"query": "how do volcanoes erupt?", "k": 5}
            )
            answers.append((status, len(body.get("results", [])) if status == 200 else -1))
            await asyncio.sleep(0.2)

    async def live_writes() -> None:
        names = list(docs)
        async with pipeline.producer() as p:
            i = 0
            while running.is_set():
                i += 1
                if i % 3 == 1:  # a new document
                    await p.upsert(TENANT, f"live/{i}.md", f"Live note {i}: lava, magma and tide pools. " * 20)
                    live_ops.append(f"new live/{i}.md")
                elif i % 3 == 2:  # an update of an indexed one
                    name = names[i % len(names)]
                    await p.upsert(TENANT, name, docs[name] + f"\n\nEdited during the reindex ({i}).")
                    live_ops.append(f"update {name}")
                else:  # delete the document created two steps ago, and one of the corpus
                    await p.delete(TENANT, f"live/{i - 2}.md")
                    live_ops.append(f"delete live/{i - 2}.md")
                    if i in (3, 9):
                        await p.delete(TENANT, names[i])
                        live_ops.append(f"delete {names[i]}")
                await asyncio.sleep(0.3)

    async def answering() -> bool:
        return len(answers) >= 3

    queries, writes = asyncio.create_task(query_loop()), asyncio.create_task(live_writes())
    try:
        await pipeline.wait_for(answering, timeout=60, what="the first queries")
        started = time.monotonic()
        code, out = await finish(await start_reindex(pipeline, RAG_REINDEX_UPSERT_RATE="40"))
        took = time.monotonic() - started
        ops_during = len(live_ops)
    finally:
        running.clear()
        await asyncio.gather(queries, writes)

    assert code == 0, out
    assert f"reindexed tenant {TENANT} into rag_{TENANT}__v2" in out, out
    assert ops_during >= 3, (live_ops, took)
    assert answers and all(status == 200 and n > 0 for status, n in answers), answers  # never an error or empty
    after = await collections(pipeline)
    assert [(c["name"], c["aliased"], c["model"]) for c in after] == [(f"rag_{TENANT}__v2", True, DEFAULT_MODEL)]
    await drift_free(pipeline)
    print(f"reindex took {took:.1f}s with {ops_during} live ops and {len(answers)} queries")


async def test_reindex_with_another_model_resumes_after_a_kill_and_moves_every_stage(pipeline: Any) -> None:
    docs = corpus()
    await index_docs(pipeline, docs)
    model = str(packaged_model_path().resolve())  # the same weights under another name: "model"

    # a slow run (small batches, 4 points/s), killed once it has committed progress
    slow = await start_reindex(pipeline, "--model", model, RAG_REINDEX_UPSERT_RATE="4", RAG_EMBED_BATCH="1")
    group = consumer_group(pipeline.settings.app_id, TENANT, 2)

    async def progressed() -> bool:
        assert slow.returncode is None, "the slow reindex ended before it could be interrupted"
        return await pipeline.committed_offsets(group) > 0

    await pipeline.wait_for(progressed, timeout=300, what="the reindex to commit progress")
    slow.send_signal(signal.SIGKILL)
    await slow.wait()
    assert [(c["name"], c["aliased"]) for c in await collections(pipeline)] == [
        (f"rag_{TENANT}__v1", True),
        (f"rag_{TENANT}__v2", False),
    ]

    code, out = await finish(await start_reindex(pipeline, "--model", model))
    assert code == 0, out
    assert f"resuming rag_{TENANT}__v1 -> v2" in out, out
    (current,) = await collections(pipeline)
    assert (current["name"], current["aliased"], current["model"], current["source"]) == (
        f"rag_{TENANT}__v2",
        True,
        "model",
        model,
    )
    await drift_free(pipeline)
    assert {pt["model"] for pt in await pipeline.points(TENANT)} == {"model"}

    # live writes after the flip are embedded with the collection's model; queries still answer
    async with pipeline.producer() as p:
        await p.upsert(TENANT, "after.md", "Written after the reindex: basalt lava flows cool slowly. " * 10)

    async def after_indexed() -> bool:
        return any(pt["doc_id"] == "after.md" for pt in await pipeline.points(TENANT))

    await pipeline.wait_for(after_indexed, timeout=240, what="a document written after the flip")
    assert {pt["model"] for pt in await pipeline.points(TENANT) if pt["doc_id"] == "after.md"} == {"model"}
    results = await pipeline.search(TENANT, "how does lava cool?")
    assert results and results[0]["doc_id"] in {"after.md", "volcanoes.md"}, results
