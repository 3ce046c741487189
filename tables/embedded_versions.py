"""embed stage: what was last emitted per chunk slot and per document."""

from __future__ import annotations

from rag_streams.app import chunks_topic
from rag_streams.tables.versions import version_table

#: ``[version, content_hash]`` of the embedding last emitted per chunk slot, so a chunk replayed
#: after a crash (Faust commits transactions on a timer, not per batch) is not emitted twice.
embedded_slots = version_table(
    "embedded-slots",
    "embed stage: version and content hash emitted per tenant/doc_id/chunk_index",
    written_from=chunks_topic,
)

#: ``[version, chunk_count, deleted]`` of the document version last emitted, so the slots a shrink
#: or a delete removed are forgotten (see rag_streams.embed_plan).
embedded_docs = version_table(
    "embedded-docs", "embed stage: version, chunk count and deleted flag per tenant/doc_id", written_from=chunks_topic
)
