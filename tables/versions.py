"""Version tables: what each stage has already applied, per document and per chunk slot.

All are co-partitioned with the pipeline topics (key ``tenant/doc_id`` or
``tenant/doc_id/chunk_index``, changelog partition = source partition), backed by RocksDB
and restored from their changelog topics after a crash.

Each stage's tables live in their own module, imported only by that stage's agent: a worker
registers (subscribes to the changelogs of, and restores) only the tables of its roles. Were
every worker to register every table, the changelogs would form a topic group of their own,
assigned across all workers, and workers of different roles would open producers with the same
transactional id and fence each other.
"""

from __future__ import annotations

from faust.types import TableT, TopicT

from rag_streams._faust.compat import transaction_group
from rag_streams.app import app, settings

__all__ = ["APPLIED_VERSIONS", "version_table"]

#: the index stage's table of what the vector store holds per document (read by the search API)
APPLIED_VERSIONS = "applied-versions"


def version_table(name: str, description: str, *, written_from: TopicT) -> TableT:
    """A version table: no default, co-partitioned with ``written_from``, whose events write it.

    Its changelog records commit in the transaction of the source partition (rag_streams/_faust/compat.py, 7).
    """
    table = app.Table(name, default=None, partitions=settings.topic_partitions, help=description)
    for source in written_from.topics:
        transaction_group(table.changelog_topic.get_topic_name(), source)
    return table
