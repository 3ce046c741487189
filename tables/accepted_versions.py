"""chunk stage: the latest accepted raw document version per document."""

from __future__ import annotations

from rag_streams.app import raw_topic
from rag_streams.tables.versions import version_table

#: DocState ``[version, deleted]`` of the latest accepted raw document version.
accepted_versions = version_table(
    "accepted-versions", "chunk stage: latest accepted version per tenant/doc_id", written_from=raw_topic
)
