"""Consumer lag, read from the broker: :class:`LagReader` takes the :class:`Snapshot` s that the
rules in rag_streams.rules.lag turn into a report (``rag-streams lag`` and the worker's exporter)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from rag_streams.adapters.kafka_admin import committed_reader
from rag_streams.errors import retry_transient
from rag_streams.rules.lag import TP, LagReport, Snapshot, build_report, pipeline_stages
from rag_streams.settings import Settings

__all__ = ["LagReader", "consumers_per_topic", "read_lag"]

log = logging.getLogger(__name__)
#: Tails up to this many offsets are probed for visible records (markers and aborted records are not).
PROBE_MAX_OFFSETS = 1000


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
