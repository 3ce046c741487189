"""What the online part of the bench runs on: its own Kafka broker on a free loopback port, a
Redis if ``redis-server`` is installed, and one ``rag-streams worker`` process with every role."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from rag_streams.adapters.kafka_admin import create_topics
from rag_streams.adapters.kafka_local import LocalKafka
from rag_streams.adapters.redis_local import RedisServer
from rag_streams.settings import Settings, load_settings

__all__ = ["Stack", "free_port", "metric_sum"]


_handed_out: set[int] = set()


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(span: int = 1) -> int:
    """A free loopback port (``span`` consecutive ones: the local broker's controller listens on
    port + 1) below Linux's ephemeral range (see the integration tests' conftest), never one this
    process handed out before."""
    for port in range(24000 + os.getpid() % 4000, 32000 - span):
        ports = set(range(port, port + span))
        if ports & _handed_out or not all(_free(p) for p in ports):
            continue
        _handed_out.update(ports)
        return port
    raise RuntimeError("no free port between 24000 and 32000")


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples in a /metrics text whose labels include ``labels``."""
    total = 0.0
    for match in re.finditer(rf"^{name}(?:{{([^}}]*)}})? (\S+)$", text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


class Stack:
    """Broker, cache and worker for one bench run, torn down (data included) by :meth:`stop`."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.workdir = workdir
        self.kafka = LocalKafka(settings.kafka_home, settings.kafka_version, "127.0.0.1", free_port(2))
        self.redis = RedisServer(free_port(), workdir / "redis") if shutil.which("redis-server") else None
        self.port = free_port()
        run = uuid.uuid4().hex[:8]
        self.env = os.environ.copy()  # the worker inherits the caller's settings, but not its pipeline
        self.env |= {
            "RAG_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "RAG_REDIS_URL": self.redis.url if self.redis else "",
            "RAG_TOPIC_PREFIX": f"bench{run}",
            "RAG_APP_ID": f"rag-bench-{run}",
            "RAG_DATA_DIR": str(workdir / "data"),
            "RAG_WEB_HOST": "127.0.0.1",
            "RAG_WEB_PORT": str(self.port),
            "RAG_API_URL": "",
            "RAG_API_KEYS": "",
            "RAG_API_KEYS_FILE": "",
            "RAG_QDRANT_URL": "",
            "RAG_QDRANT_PATH": "",
            "RAG_VECTOR_STORE": "",
        }
        self.settings = load_settings({k: v for k, v in self.env.items() if k.startswith("RAG_")}, dotenv=None)
        self.log = workdir / "worker.log"
        self.worker: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._started = False

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kafka.wipe()
        self._started = True
        await asyncio.to_thread(self.kafka.start)
        if self.redis is not None:
            await asyncio.to_thread(self.redis.start)
        await create_topics(self.settings)
        with open(self.log, "ab") as out:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "rag_streams.cli", "worker"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            self.check_worker()
            try:
                if (await self.api("GET", "/healthz"))[0] == 200:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the bench worker did not answer within 180 s; see {self.log}")

    def pids(self) -> dict[str, int | None]:
        """The processes of the stack, and this one (the bench: its polls and its producer)."""
        return {
            "worker": self.worker.pid if self.worker is not None else None,
            "kafka": self.kafka.pid(),
            "redis": self.redis.proc.pid if self.redis is not None and self.redis.proc is not None else None,
            "bench": os.getpid(),
        }

    def check_worker(self) -> None:
        if self.worker is None or self.worker.poll() is not None:
            raise RuntimeError(f"the bench worker exited; its log: {self.log}")

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        assert self._session is not None
        async with self._session.request(
            method, f"http://127.0.0.1:{self.port}{path}", data=None if body is None else orjson.dumps(body)
        ) as resp:
            return resp.status, orjson.loads(await resp.read())

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples on the worker's /metrics whose labels include ``labels``."""
        return metric_sum(await self.metrics_text(name), name, **labels)

    async def metrics_text(self, *names: str) -> str:
        """The worker's /metrics, once, only the samples ``names`` (all without): a scrape costs the
        worker's event loop, a full one ~7 ms on this machine, so polls ask for what they read."""
        assert self._session is not None
        params = [("name[]", n) for n in names]
        async with self._session.get(f"http://127.0.0.1:{self.port}/metrics", params=params) as resp:
            return await resp.text()

    async def stop(self) -> None:
        if not self._started:
            return
        if self._session is not None:
            await self._session.close()
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.worker.wait, 60)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        if self.redis is not None:
            self.redis.stop()
        await asyncio.to_thread(self.kafka.stop)
        self.kafka.wipe()
