"""Consumer lag, the rules: per partition, per stage, time to drain, replicas advised, from one or
two :class:`Snapshot` s of the broker's offsets (observability.lag.LagReader takes them). Counts are
Kafka offsets. Documented in docs/lag.md: lag counts from the log start before anything was
committed; a tail holding only transaction markers or aborted records is no lag; time to drain =
lag / throughput (None: lag, no progress); replicas advised = ceil((incoming + lag / drain target)
/ per-replica throughput) in [1, partitions].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from rag_streams.pipeline.stages import GRAPH
from rag_streams.pipeline.topics import TopicNames
from rag_streams.settings import Settings

__all__ = [
    "TP",
    "LagReport",
    "PartitionLag",
    "Snapshot",
    "StageLag",
    "advise_replicas",
    "build_report",
    "drain_seconds",
    "partition_lag",
    "pipeline_stages",
]

TP = tuple[str, int]


def pipeline_stages(settings: Settings) -> list[tuple[str, str]]:
    """(stage, topic it consumes), in flow order; a stage with a bulk lane has a row per input."""
    names = TopicNames.for_prefix(settings.topic_prefix)
    return [(spec.role, getattr(names, topic)) for spec in GRAPH for topic in spec.inputs]


@dataclass(frozen=True)
class Snapshot:
    """The broker's offsets for a group at one moment (``taken_at``: monotonic seconds)."""

    taken_at: float
    committed: dict[TP, int | None]
    log_start: dict[TP, int]
    end: dict[TP, int]
    consumers: dict[str, int] = field(default_factory=dict)  # topic -> group members assigned to it
    empty_tails: frozenset[TP] = frozenset()  # no visible record between the position and the end

    def position(self, tp: TP) -> int:
        committed = self.committed.get(tp)
        start = self.log_start.get(tp, 0)
        return start if committed is None else max(committed, start)


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    log_start: int
    end: int
    lag: int


@dataclass(frozen=True)
class StageLag:
    stage: str
    topic: str
    partitions: int
    lag: int
    consumers: int
    throughput: float | None  # offsets/s the group consumed; None: not measured
    incoming: float | None  # offsets/s producers added
    drain_seconds: float | None
    advised_replicas: int | None


@dataclass(frozen=True)
class LagReport:
    group: str
    interval_s: float
    drain_target_s: float
    stages: list[StageLag]
    partitions: list[PartitionLag]

    @property
    def total_lag(self) -> int:
        return sum(s.lag for s in self.stages)

    @property
    def drain_seconds(self) -> float | None:
        """The slowest stage's time to drain; None when a stage with lag makes no progress."""
        times = [s.drain_seconds for s in self.stages if s.lag > 0]
        if any(t is None for t in times):
            return None
        return max((t for t in times if t is not None), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "interval_s": self.interval_s,
            "drain_target_s": self.drain_target_s,
            "total_lag": self.total_lag,
            "drain_seconds": self.drain_seconds,
            "stages": [asdict(s) for s in self.stages],
            "partitions": [asdict(p) for p in self.partitions],
        }


def partition_lag(committed: int | None, log_start: int, end: int, *, empty_tail: bool = False) -> int:
    """Offsets between the group's position and the end (see the module doc)."""
    if empty_tail:
        return 0
    position = log_start if committed is None else max(committed, log_start)
    return max(0, end - position)


def drain_seconds(lag: int, throughput: float | None) -> float | None:
    if lag <= 0:
        return 0.0
    if not throughput or throughput <= 0:
        return None
    return lag / throughput


def advise_replicas(
    *,
    lag: int,
    incoming: float | None,
    throughput: float | None,
    consumers: int,
    partitions: int,
    drain_target_s: float,
) -> int | None:
    """Replicas of a stage needed to keep up with ``incoming`` and drain ``lag`` within the target."""
    ceiling = max(1, partitions)
    needed = max(0.0, incoming or 0.0) + max(0, lag) / drain_target_s
    if not throughput or throughput <= 0:
        if needed == 0 or consumers == 0:
            return 1
        return None
    per_replica = throughput / max(1, consumers)
    return min(ceiling, max(1, math.ceil(needed / per_replica - 1e-9)))


def _rate(before: Snapshot | None, after: Snapshot, value: Any, tps: list[TP]) -> float | None:
    if before is None or after.taken_at <= before.taken_at:
        return None
    delta = sum(max(0, value(after, tp) - value(before, tp)) for tp in tps)
    return delta / (after.taken_at - before.taken_at)


def build_report(
    group: str,
    stages: list[tuple[str, str]],
    after: Snapshot,
    before: Snapshot | None = None,
    *,
    drain_target_s: float = 300.0,
) -> LagReport:
    """The report from one snapshot (no rates) or two (rates over the time between them)."""
    rows: list[PartitionLag] = []
    out: list[StageLag] = []
    for stage, topic in stages:
        tps = sorted(tp for tp in after.end if tp[0] == topic)
        lags = []
        for tp in tps:
            committed, start = after.committed.get(tp), after.log_start.get(tp, 0)
            left = partition_lag(committed, start, after.end[tp], empty_tail=tp in after.empty_tails)
            lags.append(PartitionLag(topic, tp[1], committed, start, after.end[tp], left))
        rows += lags
        lag = sum(r.lag for r in lags)
        throughput = _rate(before, after, Snapshot.position, tps)
        incoming = _rate(before, after, lambda s, tp: s.end.get(tp, 0), tps)
        consumers = after.consumers.get(topic, 0)
        advised = advise_replicas(
            lag=lag,
            incoming=incoming,
            throughput=throughput,
            consumers=consumers,
            partitions=len(tps),
            drain_target_s=drain_target_s,
        )
        drain = drain_seconds(lag, throughput)
        out.append(StageLag(stage, topic, len(tps), lag, consumers, throughput, incoming, drain, advised))
    interval = 0.0 if before is None else max(0.0, after.taken_at - before.taken_at)
    return LagReport(group, round(interval, 3), drain_target_s, out, rows)
