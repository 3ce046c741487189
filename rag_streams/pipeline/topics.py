"""Topic names and their configuration, in flow order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rag_streams.pipeline.stages import topics_in_flow_order
from rag_streams.settings import Settings

__all__ = ["TopicNames", "TopicSpec", "missing_topics", "topic_specs"]


@dataclass(frozen=True)
class TopicNames:
    raw: str
    raw_bulk: str  #: the bulk lane's raw documents: ``publish --bulk``, producers' bulk loads
    latest: str
    chunks: str
    chunks_bulk: str  #: the bulk lane's chunks
    embeddings: str
    deadletter: str

    @classmethod
    def for_prefix(cls, prefix: str) -> TopicNames:
        return cls(
            raw=f"{prefix}.documents.raw",
            raw_bulk=f"{prefix}.documents.raw.bulk",
            latest=f"{prefix}.documents.latest",
            chunks=f"{prefix}.documents.chunks",
            chunks_bulk=f"{prefix}.documents.chunks.bulk",
            embeddings=f"{prefix}.embeddings.upserts",
            deadletter=f"{prefix}.deadletter",
        )


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every pipeline topic with its partitions and cleanup policy (all co-partitioned)."""
    names = TopicNames.for_prefix(settings.topic_prefix)
    n, rf = settings.topic_partitions, settings.topic_replication
    size = {"max.message.bytes": str(max_message_bytes(settings))}
    delete = {"cleanup.policy": "delete", **size}
    config = {
        "raw": {**delete, "retention.ms": str(settings.raw_retention_ms)},
        "raw_bulk": {**delete, "retention.ms": str(settings.raw_retention_ms)},
        "latest": {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", **size},
        "deadletter": {**delete, "retention.ms": str(30 * 24 * 3600 * 1000)},
    }
    return [TopicSpec(getattr(names, t), n, rf, config.get(t, delete)) for t in topics_in_flow_order()]


def max_message_bytes(settings: Settings) -> int:
    """The largest record any stage writes: a dead letter of a raw message just over the document
    limit (its original bytes plus the error), with room for Avro and record overhead."""
    return max(1_048_588, 2 * settings.max_doc_bytes + 131_072)


def missing_topics(settings: Settings, existing: Iterable[str]) -> list[str]:
    """The pipeline topics (flow order) that are not among ``existing`` (the broker's topic names)."""
    have = set(existing)
    return [spec.name for spec in topic_specs(settings) if spec.name not in have]
