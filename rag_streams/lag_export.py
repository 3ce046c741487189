"""The worker's lag exporter: ``rag_kafka_consumer_lag`` and ``rag_drain_time_seconds``.

Every ``RAG_LAG_INTERVAL_S`` the group leader reads its own group's lag with the code behind
``rag-streams lag`` (rag_streams.lag) and sets the gauges; throughput comes from the previous
reading. One worker exports (the leader), so the series are not repeated per worker; a worker
that is not the leader clears them. It runs in a timer, off the message path, and its errors are
logged, never raised: a broker hiccup must not stop the worker.
"""

from __future__ import annotations

import logging
import math
from typing import Any, cast

from aiokafka.errors import KafkaError

from rag_streams import metrics
from rag_streams.app import app, settings
from rag_streams.lag import LagReader, LagReport, Snapshot, build_report, pipeline_stages

__all__ = ["export_report", "export_tick"]
log = logging.getLogger(__name__)
_STAGES = pipeline_stages(settings)


class _State:
    reader: LagReader | None = None
    previous: Snapshot | None = None


def export_report(report: LagReport) -> None:
    """Set the gauges from a report (drain time +Inf when it is unknown: lag without progress)."""
    metrics.kafka_consumer_lag.clear()
    for p in report.partitions:
        metrics.kafka_consumer_lag.labels(report.group, p.topic, str(p.partition)).set(p.lag)
    drain = report.drain_seconds
    if report.interval_s > 0 or report.total_lag == 0:  # a rate was measured, or nothing is left
        metrics.drain_time_seconds.labels(report.group).set(math.inf if drain is None else drain)


async def _read() -> LagReport:
    if _State.reader is None:
        reader = LagReader(settings)
        await reader.start()
        _State.reader = reader
    snapshot = await _State.reader.snapshot(settings.app_id, [topic for _, topic in _STAGES])
    report = build_report(settings.app_id, _STAGES, snapshot, _State.previous)
    _State.previous = snapshot
    return report


async def _reset() -> None:
    reader, _State.reader, _State.previous = _State.reader, None, None
    if reader is not None:
        try:
            await reader.stop()
        except (KafkaError, OSError) as exc:
            log.debug("lag reader stop: %s", exc)


async def export_tick() -> None:
    """One reading: the leader sets the gauges, any other worker clears them. Never raises."""
    if not app.is_leader():
        metrics.kafka_consumer_lag.clear()
        metrics.drain_time_seconds.clear()
        _State.previous = None
        return
    try:
        export_report(await _read())
    except (KafkaError, OSError, TimeoutError) as exc:
        log.warning("reading consumer lag failed: %s: %s", type(exc).__name__, exc, extra={"stage": "lag"})
        await _reset()
    except Exception:  # a bug here must not stop the worker: log it, start afresh next time
        log.exception("reading consumer lag failed", extra={"stage": "lag"})
        await _reset()


async def _close_reader(sender: Any, *args: Any, **kwargs: Any) -> None:
    await _reset()


if settings.lag_interval_s > 0:
    app.timer(settings.lag_interval_s, name="export_lag")(export_tick)
    # cast: mode's handler type names its `signal` argument by a string mypy cannot resolve
    app.on_before_shutdown.connect(cast(Any, _close_reader))
