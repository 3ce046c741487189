"""Version tables: what each stage has already applied, per document and per chunk slot.

All are co-partitioned with the pipeline topics (key ``tenant/doc_id`` or
``tenant/doc_id/chunk_index``, changelog partition = source partition), backed by RocksDB
and restored from their changelog topics after a crash.
"""

from __future__ import annotations

from faust.types import TableT

from rag_streams.app import app, settings


def _table(name: str, description: str) -> TableT:
    """A version table: no default, co-partitioned with the pipeline topics."""
    return app.Table(name, default=None, partitions=settings.topic_partitions, help=description)


#: chunk stage: DocState ``[version, deleted]`` of the latest accepted raw document version.
accepted_versions = _table("accepted-versions", "chunk stage: latest accepted version per tenant/doc_id")

#: index stage: DocState ``[version, deleted]`` applied to the vector store per document.
applied_versions = _table("applied-versions", "index stage: latest version applied to Qdrant per tenant/doc_id")

#: index stage: ``[version, content_hash]`` of what the vector store holds per chunk slot.
chunk_slots = _table("chunk-slots", "index stage: version and content hash per tenant/doc_id/chunk_index")

#: embed stage: ``[version, content_hash]`` of the embedding last emitted per chunk slot, so a
#: chunk replayed after a crash (Faust commits transactions on a timer, not per batch) is not
#: emitted twice.
embedded_slots = _table("embedded-slots", "embed stage: version and content hash emitted per tenant/doc_id/chunk_index")

#: embed stage: ``[version, chunk_count, deleted]`` of the document version last emitted, so the
#: slots a shrink or a delete removed are forgotten (see rag_streams.embed_plan).
embedded_docs = _table("embedded-docs", "embed stage: version, chunk count and deleted flag per tenant/doc_id")
