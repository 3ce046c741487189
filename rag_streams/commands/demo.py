"""``rag-streams demo``: the main job end to end on embedded defaults.

Starts the local Kafka broker (if it is not running), creates the topics, runs a worker,
publishes the sample corpus shipped with the package, waits until every document is
searchable, and answers a question with its source document.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from rag_streams.adapters.kafka_admin import create_topics
from rag_streams.adapters.producer import DocumentProducer
from rag_streams.commands.ops import api_call, local_kafka
from rag_streams.settings import Settings

TENANT = "demo"
QUESTION = "How does a read_committed consumer avoid seeing messages from aborted transactions?"


def sample_corpus() -> list[tuple[str, str]]:
    folder = resources.files("rag_streams") / "sample_corpus"
    return sorted((p.name, p.read_text()) for p in folder.iterdir() if p.name.endswith(".md"))


async def _ingest_and_ask(settings: Settings, worker: subprocess.Popen[bytes]) -> float:
    docs = sample_corpus()
    started = time.perf_counter()
    async with DocumentProducer(settings) as producer:
        versions = {
            doc_id: await producer.upsert(TENANT, doc_id, text, metadata={"path": doc_id}) for doc_id, text in docs
        }
    print(f"published {len(docs)} documents for tenant {TENANT!r}; waiting until they are searchable ...")
    points: list[dict[str, Any]] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}; see its log")
        try:
            status, body = await api_call(settings, "GET", f"/v1/tenants/{TENANT}/points", timeout=10)
        except OSError:
            status, body = 0, {}
        if status == 200:
            points = body["points"]
            done = {(p["doc_id"], p["version"]) for p in points if p["chunk_index"] == p["chunk_count"] - 1}
            if all((d, v) in done for d, v in versions.items()):
                break
        await asyncio.sleep(0.5)
    else:
        raise RuntimeError("the corpus was not indexed within 10 minutes")
    elapsed = time.perf_counter() - started
    print(
        f"indexed {len(points)} chunks of {len(docs)} documents in {elapsed:.1f}s "
        f"({len(points) / elapsed:.1f} chunks/s end to end, model load included)"
    )
    status, body = await api_call(settings, "POST", f"/v1/tenants/{TENANT}/search", {"query": QUESTION, "k": 3})
    if status != 200 or not body["results"]:
        raise RuntimeError(f"search failed: {body}")
    best = body["results"][0]
    print(f"\nQ: {QUESTION}\n")
    print(f"A (from {best['doc_id']}, chunk {best['chunk_index']}, score {best['score']:.3f}):")
    print("   " + " ".join(str(best["text"]).split())[:600])
    return elapsed


def run_demo(settings: Settings) -> int:
    broker = local_kafka(settings)
    started_kafka = broker.pid() is None
    print(
        f"starting Kafka {settings.kafka_version} on {broker.bootstrap} ..."
        if started_kafka
        else f"using the running Kafka on {broker.bootstrap}"
    )
    broker.start()
    asyncio.run(create_topics(settings))
    log_path = Path(settings.data_dir) / "demo-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"starting a worker (log: {log_path}) ...")
    with open(log_path, "ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "rag_streams.cli", "worker"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    try:
        asyncio.run(_ingest_and_ask(settings, worker))
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        if started_kafka:
            broker.stop()
    return 0
