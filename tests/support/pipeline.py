"""A pipeline of real processes on a real broker: its worker subprocesses, topics and probes.

Shared by tests/integration (its conftest's fixtures build them) and any test that needs one
outside a fixture; importable as ``support.pipeline`` (tests/ is on the path), unlike a conftest.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from rag_streams.adapters.kafka_admin import create_topics
from rag_streams.adapters.kafka_local import LocalKafka
from rag_streams.adapters.producer import DocumentProducer
from rag_streams.adapters.redis_local import RedisServer
from rag_streams.pipeline.topics import TopicNames
from rag_streams.settings import Settings, load_settings

# Listening ports stay below Linux's ephemeral range (32768-60999): while a listener is down
# (broker restart, killed worker), clients retrying to connect to it from ephemeral ports can
# land on the port itself and connect to themselves (TCP simultaneous open), which holds the
# port, and the restarted broker or worker fails with "Address already in use".
KAFKA_PORT = int(os.environ.get("RAG_TEST_KAFKA_PORT", "29092"))
REDIS_PORT = int(os.environ.get("RAG_TEST_REDIS_PORT", "26379"))
_LISTEN_PORTS = range(20000, 32000)


def free_port() -> int:
    """A free port outside the ephemeral range, for a worker's HTTP API."""
    rng = random.Random()
    for _ in range(200):
        port = rng.choice(_LISTEN_PORTS)
        if port in (KAFKA_PORT, REDIS_PORT):
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


class Worker:
    """One `rag-streams worker` process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, roles: str = "chunk,embed,index") -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rag_streams.cli", "worker", "--role", roles],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Pipeline:
    """A pipeline of its own (topic prefix, app id, data dir) on the shared broker."""

    def __init__(self, kafka: LocalKafka, tmp: Path, redis: RedisServer) -> None:
        run = uuid.uuid4().hex[:8]
        self.port = free_port()
        self.env = {
            **os.environ,
            "RAG_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "RAG_REDIS_URL": redis.url,
            "RAG_TOPIC_PREFIX": f"t{run}",
            "RAG_APP_ID": f"rag-test-{run}",
            "RAG_DATA_DIR": str(tmp / "data"),
            "RAG_WEB_PORT": str(self.port),
            "RAG_TOPIC_PARTITIONS": "3",
            "RAG_EMBED_BATCH": "32",
            "RAG_SESSION_TIMEOUT_S": "10",  # a SIGKILLed worker's partitions move in seconds, not 45 s
            "RAG_LOG_LEVEL": os.environ.get("RAG_TEST_WORKER_LOG_LEVEL", "info"),
        }
        self.settings: Settings = load_settings(
            {k: v for k, v in self.env.items() if k.startswith("RAG_")}, dotenv=None
        )
        self.topics = TopicNames.for_prefix(self.settings.topic_prefix)
        self.tmp = tmp
        self.worker = Worker(self.env, tmp / "worker.log")
        self.workers = [self.worker]

    async def committed_offsets(self, group: str) -> int:
        """The sum of a consumer group's committed offsets (0 before its first commit)."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        return sum(max(0, o.offset) for o in offsets.values())

    def crashes(self) -> list[str]:
        """Logs of this pipeline's workers in which Faust reported a crash (the worker died on its own)."""
        return [
            f"{w.log.name}:\n{w.log.read_text(errors='replace')[-4000:]}"
            for w in self.workers
            if w.log.exists() and "We experienced a crash" in w.log.read_text(errors="replace")
        ]

    def worker_with(self, name: str, *, port: int | None = None) -> Worker:
        """Another worker process of this pipeline, with its own data dir and HTTP port."""
        env = {
            **self.env,
            "RAG_DATA_DIR": str(self.tmp / name),
            "RAG_WEB_PORT": str(port or free_port()),
            "RAG_API_URL": f"http://127.0.0.1:{self.port}",  # the pipeline's API: its index worker
        }
        worker = Worker(env, self.tmp / f"{name}.log")
        self.workers.append(worker)
        return worker

    async def start(self) -> None:
        await create_topics(self.settings)
        self.worker.start()
        await self.wait_for(self._healthy, timeout=120, what="worker HTTP API")

    async def restart(self) -> None:
        self.worker.start()
        await self.wait_for(self._healthy, timeout=120, what="worker HTTP API")

    async def _healthy(self) -> bool:
        if not self.worker.alive():
            raise AssertionError(f"worker exited; log:\n{self.worker.log.read_text()[-3000:]}")
        try:
            status, _ = await self.api("GET", "/healthz")
        except aiohttp.ClientError:
            return False
        return status == 200

    async def api(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.request(
                method,
                f"http://127.0.0.1:{self.port}{path}",
                headers=headers,
                data=None if body is None else orjson.dumps(body),
            ) as resp,
        ):
            return resp.status, orjson.loads(await resp.read())

    async def metric(self, name: str, *, port: int | None = None) -> float:
        """The sum of a metric's samples (over all labels) on the worker's /metrics (or another
        worker's of this pipeline, by its port)."""
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.get(f"http://127.0.0.1:{port or self.port}/metrics") as resp,
        ):
            text = await resp.text()
        return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))

    async def holds_exactly(self, tenant: str, docs: set[tuple[str, int]]) -> bool:
        """Whether the tenant's points are every chunk of exactly these (doc_id, version) and nothing else."""
        return exactly(await self.points(tenant), docs)

    async def points(self, tenant: str) -> list[dict[str, Any]]:
        status, body = await self.api("GET", f"/v1/tenants/{tenant}/points")
        assert status == 200, body
        return list(body["points"])

    async def search(self, tenant: str, query: str, k: int = 5) -> list[dict[str, Any]]:
        status, body = await self.api("POST", f"/v1/tenants/{tenant}/search", {"query": query, "k": k})
        assert status == 200, body
        return list(body["results"])

    def producer(self) -> DocumentProducer:
        return DocumentProducer(self.settings)

    async def wait_for(
        self, cond: Callable[[], Awaitable[bool]], *, timeout: float, what: str | Callable[[], str]
    ) -> None:
        """Poll ``cond`` until it holds; past ``timeout``, fail with ``what`` (or what it returns
        then) and :meth:`diagnosis`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await cond():
                    return
            except aiohttp.ClientConnectionError:
                pass  # the worker's HTTP API is not up (yet, or again)
            await asyncio.sleep(0.5)
        waited_for = what() if callable(what) else what
        raise AssertionError(f"timed out after {timeout}s waiting for {waited_for}\n{self.diagnosis()}")

    def diagnosis(self, lines: int = 40) -> str:
        """Each worker of this pipeline: alive or its exit code, and its log's last lines (what a
        timed-out wait reports, so that a hang on CI can be read from CI's output)."""
        out = []
        for w in self.workers:
            state = "alive" if w.alive() else f"exited {w.proc.returncode if w.proc else 'never started'}"
            tail = w.log.read_text(errors="replace").splitlines()[-lines:] if w.log.exists() else []
            out.append(f"--- {w.log.name} ({state}), last {len(tail)} lines:\n" + "\n".join(tail))
        return "\n".join(out)

    async def verify(self, tenant: str, *args: str) -> tuple[int, str]:
        """`rag-streams verify --tenant T [args]`: the invariant checker. Returns (exit code, output)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rag_streams.cli",
            "verify",
            "--tenant",
            tenant,
            *args,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode()

    async def committed_chunk_keys(self) -> tuple[Counter[Any], Counter[Any]]:
        """How often each (doc_id, version, chunk_index, op) is on the chunk topics (both lanes) and on
        the embedding topic, as read_committed consumers see them: exactly-once between topics means once."""
        from rag_streams.adapters.codecs import CHUNK, EMBEDDING

        chunks = [CHUNK.decode(r.value) for r in await self.read_topic(self.topics.chunks)]
        chunks += [CHUNK.decode(r.value) for r in await self.read_topic(self.topics.chunks_bulk)]  # the bulk lane
        embeddings = [EMBEDDING.decode(r.value) for r in await self.read_topic(self.topics.embeddings)]
        return (
            Counter((c.doc_id, c.version, c.chunk_index, c.op) for c in chunks),
            Counter((e.doc_id, e.version, e.chunk_index, e.op) for e in embeddings),
        )

    async def read_topic(self, topic: str, *, isolation: str = "read_committed") -> list[Any]:
        """Every record of a topic, from the beginning to the current end."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            isolation_level=isolation,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            parts = [
                TopicPartition(topic, p)
                for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
            ]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            out: list[Any] = []
            while True:
                positions = {tp: await consumer.position(tp) for tp in parts}
                if all(positions[tp] >= ends[tp] for tp in parts):
                    break
                batch = await consumer.getmany(*parts, timeout_ms=1000)
                for records in batch.values():
                    out += records
            return out
        finally:
            await consumer.stop()


def exactly(points: list[dict[str, Any]], docs: set[tuple[str, int]]) -> bool:
    """Whether ``points`` are every chunk of exactly these (doc_id, version) and nothing else."""
    complete = {(pt["doc_id"], pt["version"]) for pt in points if pt["chunk_index"] == pt["chunk_count"] - 1}
    return complete == docs and len(points) == sum(pt["chunk_count"] for pt in points if pt["chunk_index"] == 0)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()
