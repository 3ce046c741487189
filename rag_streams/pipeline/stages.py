"""The stage graph, declared once: each stage's role, the topic it consumes, what it emits and the
tables it keeps. The CLI (``--role``), ``rag-streams lag``, topic creation and ``create_app`` read it.

Topics are named by their field of :class:`rag_streams.pipeline.topics.TopicNames` (``raw``, ``chunks``...).
"""

from __future__ import annotations

from dataclasses import dataclass

from rag_streams.tables.versions import ACCEPTED_VERSIONS, APPLIED_VERSIONS, CHUNK_SLOTS, EMBEDDED_DOCS, EMBEDDED_SLOTS

__all__ = ["GRAPH", "ROLES", "StageSpec", "stage"]


@dataclass(frozen=True)
class StageSpec:
    role: str  #: ``rag-streams worker --role``
    input: str  #: the topic it consumes (a TopicNames field)
    outputs: tuple[str, ...]  #: the topics it writes, in its transactions
    tables: tuple[str, ...]  #: its version tables (changelog partition = input partition)
    agent: str  #: the module of its Faust agent, under rag_streams.agents
    #: a second input, the bulk lane: consumed by a second agent of the stage, co-partitioned with
    #: ``input`` and committed in its transactions (one task per partition, as in Kafka Streams)
    bulk_input: str | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,) if self.bulk_input is None else (self.input, self.bulk_input)


GRAPH: tuple[StageSpec, ...] = (
    StageSpec(
        "chunk",
        "raw",
        ("latest", "chunks", "chunks_bulk", "deadletter"),
        (ACCEPTED_VERSIONS,),
        "rag_streams.agents.chunk_documents",
        bulk_input="raw_bulk",
    ),
    StageSpec(
        "embed",
        "chunks",
        ("embeddings", "deadletter"),
        (EMBEDDED_SLOTS, EMBEDDED_DOCS),
        "rag_streams.agents.embed_chunks",
        bulk_input="chunks_bulk",
    ),
    StageSpec(
        "index",
        "embeddings",
        ("deadletter",),
        (APPLIED_VERSIONS, CHUNK_SLOTS),
        "rag_streams.agents.index_embeddings",
    ),
)

#: the roles, in flow order
ROLES: tuple[str, ...] = tuple(s.role for s in GRAPH)


def stage(role: str) -> StageSpec:
    for spec in GRAPH:
        if spec.role == role:
            return spec
    raise KeyError(role)


def topics_in_flow_order() -> list[str]:
    """Every topic of the graph (TopicNames fields), each once, in flow order."""
    seen: list[str] = []
    for spec in GRAPH:
        for topic in (*spec.inputs, *spec.outputs):
            if topic not in seen and topic != "deadletter":
                seen.append(topic)
    return [*seen, "deadletter"]
