"""Version tables: what each stage has already applied, per document and per chunk slot.

All are co-partitioned with the pipeline topics (key ``tenant/doc_id`` or
``tenant/doc_id/chunk_index``, changelog partition = source partition), backed by RocksDB
and restored from their changelog topics after a crash. Each is declared here once and created
(:meth:`rag_streams.pipeline.app.Pipeline.version_table`) only by its stage's ``register``: a worker
registers (subscribes to the changelogs of, and restores) only the tables of its roles. Were
every worker to register every table, the changelogs would form a topic group of their own,
assigned across all workers, and workers of different roles would open producers with the same
transactional id and fence each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag_streams.pipeline.app import Pipeline

__all__ = [
    "ACCEPTED_VERSIONS",
    "APPLIED_VERSIONS",
    "CHUNK_SLOTS",
    "EMBEDDED_DOCS",
    "EMBEDDED_SLOTS",
    "accepted_versions",
    "applied_versions",
    "chunk_slots",
    "embedded_docs",
    "embedded_slots",
]

ACCEPTED_VERSIONS = "accepted-versions"
EMBEDDED_SLOTS = "embedded-slots"
EMBEDDED_DOCS = "embedded-docs"
#: the index stage's table of what the vector store holds per document (read by the search API)
APPLIED_VERSIONS = "applied-versions"
CHUNK_SLOTS = "chunk-slots"


def accepted_versions(p: Pipeline) -> Any:
    """chunk stage: DocState ``[version, deleted]`` of the latest accepted raw document version."""
    return p.version_table(
        ACCEPTED_VERSIONS, "chunk stage: latest accepted version per tenant/doc_id", written_from="raw"
    )


def embedded_slots(p: Pipeline) -> Any:
    """embed stage: ``[version, content_hash]`` of the embedding last emitted per chunk slot, so a
    chunk replayed after a crash (transactions commit on a timer, not per batch) is not emitted twice."""
    return p.version_table(
        EMBEDDED_SLOTS,
        "embed stage: version and content hash emitted per tenant/doc_id/chunk_index",
        written_from="chunks",
    )


def embedded_docs(p: Pipeline) -> Any:
    """embed stage: ``[version, chunk_count, deleted]`` of the document version last emitted, so the
    slots a shrink or a delete removed are forgotten (see rag_streams.rules.embed_plan)."""
    return p.version_table(
        EMBEDDED_DOCS, "embed stage: version, chunk count and deleted flag per tenant/doc_id", written_from="chunks"
    )


def applied_versions(p: Pipeline) -> Any:
    """index stage: DocState ``[version, deleted]`` applied to the vector store per document."""
    return p.version_table(
        APPLIED_VERSIONS, "index stage: latest version applied to Qdrant per tenant/doc_id", written_from="embeddings"
    )


def chunk_slots(p: Pipeline) -> Any:
    """index stage: ``[version, content_hash]`` of what the vector store holds per chunk slot."""
    return p.version_table(
        CHUNK_SLOTS,
        "index stage: version and content hash per tenant/doc_id/chunk_index",
        written_from="embeddings",
    )
