"""Kafka administration: create the pipeline topics, read consumer lag."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from rag_streams.settings import Settings
from rag_streams.topics import topic_specs

__all__ = ["create_topics"]


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
