"""The worker's lag exporter: ``rag_kafka_consumer_lag`` and ``rag_drain_time_seconds``.

Every ``RAG_LAG_INTERVAL_S`` the group leader reads its own group's lag with the code behind
``rag-streams lag`` (rag_streams.observability.lag) and sets the gauges; throughput comes from the previous
reading. One worker exports (the leader), so the series are not repeated per worker; a worker
that is not the leader clears them. It runs in a timer, off the message path, and its errors are
logged, never raised: a broker hiccup must not stop the worker.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, cast

from aiokafka.errors import KafkaError

from rag_streams.observability import metrics
from rag_streams.observability.lag import LagReader
from rag_streams.rules.lag import LagReport, Snapshot, build_report, pipeline_stages
from rag_streams.settings import Settings

if TYPE_CHECKING:
    from rag_streams.pipeline.app import Pipeline

__all__ = ["LagExporter", "export_report", "register"]
log = logging.getLogger(__name__)


def export_report(report: LagReport) -> None:
    """Set the gauges from a report (drain time +Inf when it is unknown: lag without progress)."""
    metrics.kafka_consumer_lag.clear()
    for p in report.partitions:
        metrics.kafka_consumer_lag.labels(report.group, p.topic, str(p.partition)).set(p.lag)
    drain = report.drain_seconds
    if report.interval_s > 0 or report.total_lag == 0:  # a rate was measured, or nothing is left
        metrics.drain_time_seconds.labels(report.group).set(math.inf if drain is None else drain)


class LagExporter:
    """The gauges of one worker's app, read every RAG_LAG_INTERVAL_S by its timer."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.stages = pipeline_stages(settings)
        self.reader: LagReader | None = None
        self.previous: Snapshot | None = None

    async def read(self) -> LagReport:
        if self.reader is None:
            reader = LagReader(self.settings)
            await reader.start()
            self.reader = reader
        snapshot = await self.reader.snapshot(self.settings.app_id, [topic for _, topic in self.stages])
        report = build_report(self.settings.app_id, self.stages, snapshot, self.previous)
        self.previous = snapshot
        return report

    async def reset(self, sender: Any = None, *args: Any, **kwargs: Any) -> None:
        reader, self.reader, self.previous = self.reader, None, None
        if reader is not None:
            try:
                await reader.stop()
            except (KafkaError, OSError) as exc:
                log.debug("lag reader stop: %s", exc)

    async def tick(self) -> None:
        """One reading: the leader sets the gauges, any other worker clears them. Never raises."""
        if not self.app.is_leader():
            metrics.kafka_consumer_lag.clear()
            metrics.drain_time_seconds.clear()
            self.previous = None
            return
        try:
            export_report(await self.read())
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("reading consumer lag failed: %s: %s", type(exc).__name__, exc, extra={"stage": "lag"})
            await self.reset()
        except Exception:  # a bug here must not stop the worker: log it, start afresh next time
            log.exception("reading consumer lag failed", extra={"stage": "lag"})
            await self.reset()


def register(p: Pipeline) -> LagExporter:
    """The lag exporter's timer on ``p``'s app (none when RAG_LAG_INTERVAL_S is 0)."""
    exporter = LagExporter(p.app, p.settings)
    if p.settings.lag_interval_s > 0:
        p.app.timer(p.settings.lag_interval_s, name="export_lag")(exporter.tick)
        # cast: mode's handler type names its `signal` argument by a string mypy cannot resolve
        p.app.on_before_shutdown.connect(cast(Any, exporter.reset))
    return exporter
