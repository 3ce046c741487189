"""Integration fixtures: a real Kafka broker (KRaft, loopback) and real rag-streams worker processes.

Nothing here is mocked: the broker is Apache Kafka started from its Maven Central jars,
workers are `rag-streams worker` subprocesses with the real model and embedded Qdrant.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag_streams.adapters.kafka_admin import create_topics
from rag_streams.adapters.kafka_local import LocalKafka
from rag_streams.adapters.redis_local import RedisServer
from rag_streams.settings import load_settings

from support.pipeline import KAFKA_PORT, REDIS_PORT, Pipeline


@pytest.fixture(scope="session")
def kafka() -> Iterator[LocalKafka]:
    home = Path(os.environ.get("RAG_KAFKA_HOME", Path.home() / ".cache" / "rag-streams" / "kafka"))
    broker = LocalKafka(home, load_settings({}, dotenv=None).kafka_version, "127.0.0.1", KAFKA_PORT)
    broker.stop(kill=True)
    broker.wipe()
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The search answer cache's real Redis, shared: each pipeline's keys are under its app id."""
    server = RedisServer(REDIS_PORT, tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def pipeline(kafka: LocalKafka, redis_server: RedisServer, tmp_path: Path) -> Any:
    p = Pipeline(kafka, tmp_path, redis_server)
    await p.start()
    yield p
    p.worker.stop()
    assert p.crashes() == [], "a worker crashed (it must survive everything but SIGKILL)"


@pytest.fixture
async def idle_pipeline(kafka: LocalKafka, redis_server: RedisServer, tmp_path: Path) -> Any:
    """A pipeline whose topics exist but whose workers the test starts itself (``worker_with``)."""
    p = Pipeline(kafka, tmp_path, redis_server)
    await create_topics(p.settings)
    yield p
    assert p.crashes() == [], "a worker crashed (it must survive everything but SIGKILL)"
