"""The worker's lag exporter: gauges from a lag report, and a reading that never stops the worker."""

from __future__ import annotations

import logging
import math

import pytest
from aiokafka.errors import KafkaConnectionError

from rag_streams.observability import lag_export, metrics
from rag_streams.rules.lag import Snapshot, build_report

from support.agent_app import app, settings

STAGES = [("chunk", "raw"), ("embed", "chunks")]


def lag_sample(topic: str, partition: int) -> float | None:
    labels = {"group": "g", "topic": topic, "partition": str(partition)}
    return metrics.REGISTRY.get_sample_value("rag_kafka_consumer_lag", labels)


def drain_sample() -> float | None:
    return metrics.REGISTRY.get_sample_value("rag_drain_time_seconds", {"group": "g"})


def test_gauges_follow_the_report() -> None:
    metrics.drain_time_seconds.clear()
    before = Snapshot(
        0.0, {("raw", 0): None, ("raw", 1): 0}, {("raw", 0): 0, ("raw", 1): 0}, {("raw", 0): 7, ("raw", 1): 3}
    )
    lag_export.export_report(build_report("g", STAGES, before))
    assert (lag_sample("raw", 0), lag_sample("raw", 1)) == (7.0, 3.0)
    assert drain_sample() is None  # one reading, lag left: no rate yet, nothing claimed

    stalled = Snapshot(5.0, before.committed, before.log_start, before.end)
    lag_export.export_report(build_report("g", STAGES, stalled, before))
    assert drain_sample() == math.inf  # lag and no progress

    moving = Snapshot(10.0, {("raw", 0): 5, ("raw", 1): 3}, before.log_start, before.end)
    lag_export.export_report(build_report("g", STAGES, moving, stalled))
    assert (lag_sample("raw", 0), lag_sample("raw", 1)) == (2.0, 0.0)
    assert drain_sample() == pytest.approx(2 / (8 / 5))

    # a partition that is gone leaves no stale series behind
    shrunk = Snapshot(15.0, {("raw", 0): 7}, {("raw", 0): 0}, {("raw", 0): 7})
    lag_export.export_report(build_report("g", STAGES, shrunk, moving))
    assert (lag_sample("raw", 0), lag_sample("raw", 1)) == (0.0, None)
    assert drain_sample() == 0.0


@pytest.mark.parametrize(
    ("error", "level"), [(KafkaConnectionError("broker down"), logging.WARNING), (KeyError("bug"), logging.ERROR)]
)
async def test_a_failed_reading_is_logged_never_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception, level: int
) -> None:
    async def failing() -> None:
        raise error

    exporter = lag_export.LagExporter(app, settings)
    monkeypatch.setattr(app, "is_leader", lambda: True)
    monkeypatch.setattr(exporter, "read", failing)
    with caplog.at_level(logging.WARNING, logger=lag_export.__name__):
        await exporter.tick()
    (rec,) = [r for r in caplog.records if r.name == lag_export.__name__]
    assert rec.levelno == level and "reading consumer lag failed" in rec.getMessage()
    assert rec.stage == "lag"  # type: ignore[attr-defined]


async def test_only_the_leader_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics.kafka_consumer_lag.labels("g", "raw", "0").set(5)
    metrics.drain_time_seconds.labels("g").set(1)
    monkeypatch.setattr(app, "is_leader", lambda: False)
    await lag_export.LagExporter(app, settings).tick()
    assert lag_sample("raw", 0) is None and drain_sample() is None
