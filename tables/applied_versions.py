"""index stage: what the vector store holds per document and per chunk slot."""

from __future__ import annotations

from rag_streams.app import embeddings_topic
from rag_streams.tables.versions import APPLIED_VERSIONS, version_table

#: DocState ``[version, deleted]`` applied to the vector store per document.
applied_versions = version_table(
    APPLIED_VERSIONS, "index stage: latest version applied to Qdrant per tenant/doc_id", written_from=embeddings_topic
)

#: ``[version, content_hash]`` of what the vector store holds per chunk slot.
chunk_slots = version_table(
    "chunk-slots", "index stage: version and content hash per tenant/doc_id/chunk_index", written_from=embeddings_topic
)
