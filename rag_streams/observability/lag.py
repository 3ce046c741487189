"""Consumer lag of the pipeline's group: per partition, per stage, time to drain, replicas advised.

Pure computations on one or two :class:`Snapshot` s of the broker's offsets, and
:class:`LagReader`, the one piece that reads the broker (for ``rag-streams lag`` and the worker's
lag exporter). Counts are Kafka offsets. The rules are documented in the README ("Consumer lag"):
lag counts from the log start before anything was committed; a tail holding only transaction
markers or aborted records is no lag; time to drain = lag / throughput (None: lag, no progress);
replicas advised = ceil((incoming + lag / drain target) / per-replica throughput) in [1, partitions].
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from rag_streams.adapters.kafka_admin import committed_reader
from rag_streams.errors import retry_transient
from rag_streams.pipeline.stages import GRAPH
from rag_streams.pipeline.topics import TopicNames
from rag_streams.settings import Settings

__all__ = ["LagReader", "LagReport", "PartitionLag", "Snapshot", "StageLag", "advise_replicas", "build_report"]

log = logging.getLogger(__name__)
TP = tuple[str, int]
#: Tails up to this many offsets are probed for visible records (markers and aborted records are not).
PROBE_MAX_OFFSETS = 1000


def pipeline_stages(settings: Settings) -> list[tuple[str, str]]:
    """(stage, topic it consumes), in flow order."""
    names = TopicNames.for_prefix(settings.topic_prefix)
    return [(spec.role, getattr(names, spec.input)) for spec in GRAPH]


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


def consumers_per_topic(groups: list[Any]) -> dict[str, int]:
    """Members assigned at least one partition of each topic, from DescribeGroups responses."""
    counts: dict[str, int] = {}
    for response in groups:
        for group in response.groups:
            for member in group[5]:
                assignment = member[4]
                if not assignment:
                    continue
                decoded = ConsumerProtocolMemberAssignment.decode(assignment)
                for topic in {t for t, parts in decoded.assignment if parts}:
                    counts[topic] = counts.get(topic, 0) + 1
    return counts


class LagReader:
    """Reads a group's offsets from the broker. ``async with LagReader(settings) as r: await r.snapshot(...)``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15000)
        self._consumer = committed_reader(settings, request_timeout_ms=15000, max_partition_fetch_bytes=256 * 1024)

    async def __aenter__(self) -> LagReader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            await self._admin.start()
            await self._consumer.start()
        except BaseException:
            await self._consumer.stop()  # closed, started or not: no "Unclosed AIOKafkaConsumer" at exit
            await self._admin.close()
            raise

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self._consumer.stop(), timeout=15)
        except asyncio.TimeoutError:
            log.warning("lag reader: the offsets consumer did not stop within 15 s; left behind")
        finally:
            await self._admin.close()

    async def snapshot(self, group: str, topics: list[str], *, attempts: int = 8) -> Snapshot:
        """Retries what the broker calls retriable (e.g. no group coordinator yet on a fresh cluster)."""
        return await retry_transient(
            self._snapshot, group, topics, what="reading consumer lag", attempts=attempts, max_delay=2.0
        )

    async def _snapshot(self, group: str, topics: list[str]) -> Snapshot:
        described = await self._admin.describe_topics(topics)
        tps = [
            TopicPartition(t["topic"], int(p["partition"]))
            for t in described
            if t["topic"] in topics and not t.get("error_code")
            for p in t["partitions"]
        ]
        offsets = await self._admin.list_consumer_group_offsets(group, partitions=tps) if tps else {}
        committed = {(tp.topic, tp.partition): (o.offset if o.offset >= 0 else None) for tp, o in offsets.items()}
        starts = await self._consumer.beginning_offsets(tps) if tps else {}
        ends = await self._consumer.end_offsets(tps) if tps else {}
        taken_at = time.monotonic()
        snap = Snapshot(
            taken_at,
            {(tp.topic, tp.partition): committed.get((tp.topic, tp.partition)) for tp in tps},
            {(tp.topic, tp.partition): starts[tp] for tp in tps},
            {(tp.topic, tp.partition): ends[tp] for tp in tps},
            consumers_per_topic(await self._admin.describe_consumer_groups([group])),
        )
        tails = [tp for tp in tps if 0 < ends[tp] - snap.position((tp.topic, tp.partition)) <= PROBE_MAX_OFFSETS]
        empty = await self._empty_tails({tp: snap.position((tp.topic, tp.partition)) for tp in tails}, ends)
        return Snapshot(snap.taken_at, snap.committed, snap.log_start, snap.end, snap.consumers, frozenset(empty))

    async def _empty_tails(
        self, positions: dict[TopicPartition, int], ends: dict[TopicPartition, int], timeout: float = 5.0
    ) -> set[TP]:
        """Partitions whose offsets from the position to the end hold no record a read_committed
        consumer returns (transaction markers, aborted records): Faust commits the offset after its
        last record, never past the commit marker that follows it."""
        if not positions:
            return set()
        self._consumer.assign(list(positions))  # a new assignment starts unpaused
        for tp, offset in positions.items():
            self._consumer.seek(tp, offset)
        open_tps, empty = set(positions), set()
        deadline = time.monotonic() + timeout
        while open_tps and time.monotonic() < deadline:
            batch = await self._consumer.getmany(*open_tps, timeout_ms=200)
            open_tps -= {tp for tp, records in batch.items() if records}  # a visible record: real lag
            for tp in list(open_tps):
                if await self._consumer.position(tp) >= ends[tp]:
                    open_tps.discard(tp)
                    empty.add((tp.topic, tp.partition))
        # Paused, not unassigned: aiokafka's fetcher swallows a stop() that lands while it winds down
        # a lost assignment, and then waits forever for the next one.
        self._consumer.pause(*positions)
        return empty


async def read_lag(settings: Settings, *, interval_s: float, drain_target_s: float) -> LagReport:
    """Two snapshots of the pipeline's group ``interval_s`` apart, as a report."""
    stages = pipeline_stages(settings)
    topics = [topic for _, topic in stages]
    async with LagReader(settings) as reader:
        first = await reader.snapshot(settings.app_id, topics)
        if interval_s <= 0:
            return build_report(settings.app_id, stages, first, drain_target_s=drain_target_s)
        await asyncio.sleep(interval_s)
        second = await reader.snapshot(settings.app_id, topics)
    return build_report(settings.app_id, stages, second, first, drain_target_s=drain_target_s)
