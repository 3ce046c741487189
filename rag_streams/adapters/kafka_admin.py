"""Kafka administration and reading: create the pipeline topics, list partitions, and the one
read_committed consumer set-up every command that reads a topic itself uses."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from rag_streams.errors import CliError
from rag_streams.pipeline.topics import topic_specs
from rag_streams.settings import Settings

__all__ = ["committed_reader", "create_topics", "existing_topics", "partitions_of", "read_latest", "topic_partitions"]


async def create_topics(settings: Settings) -> list[tuple[str, str]]:
    """Create every pipeline topic that is missing; return (topic, 'created' | 'exists')."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        report: list[tuple[str, str]] = []
        for spec in topic_specs(settings):
            if spec.name in existing:
                report.append((spec.name, "exists"))
                continue
            try:
                await admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, spec.replication, topic_configs=spec.config)]
                )
                report.append((spec.name, "created"))
            except TopicAlreadyExistsError:
                report.append((spec.name, "exists"))
        return report
    finally:
        await admin.close()


async def existing_topics(settings: Settings, *, timeout_ms: int = 10000) -> set[str]:
    """The names of the topics the broker has (one metadata request)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def partitions_of(settings: Settings, topic: str) -> set[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {int(p["partition"]) for t in described if t["topic"] == topic for p in t["partitions"]}


def committed_reader(settings: Settings, group: str | None = None, **options: Any) -> AIOKafkaConsumer:
    """A consumer that sees committed records only (the pipeline writes in transactions), commits
    nothing by itself and starts from the beginning of a partition its group never committed."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **options,
    )


async def topic_partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    """The topic's partitions in order; a missing topic is the CLI's one-line error."""
    parts = [TopicPartition(topic, p) for p in sorted(await partitions_of(settings, topic))]
    if not parts:
        raise CliError(f"topic {topic} not found: run `rag-streams topics create`")
    return parts


async def read_latest(settings: Settings, topic: str, *, key_prefix: bytes = b"") -> dict[bytes, bytes | None]:
    """The last committed value per key of a (compacted) topic, read from the start to its current end."""
    consumer = committed_reader(settings)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(await partitions_of(settings, topic))]
        if not parts:
            return {}
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        latest: dict[bytes, bytes | None] = {}
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(*parts, timeout_ms=1000)).values():
                for r in records:
                    if r.key is not None and r.key.startswith(key_prefix):
                        latest[r.key] = r.value
        return latest
    finally:
        await consumer.stop()
