"""Index health, the rules: how many points the index stage's version tables say a tenant's collection
holds, and when a fall in the stored count is a sudden drop.

The index stage (rag_streams.rules.indexing) keeps per document ``applied-versions`` = DocState
``[version, deleted]`` and per chunk slot ``chunk-slots`` = ``[version, content_hash]``. Slots are
never removed: after a shrink (version 2 has fewer chunks than version 1) or a delete, the slots of
the older version stay, and the store's cleanup removed their points. So a tenant's expected point
count is the number of slots whose version is their document's applied version, for documents not
deleted. While a document is half-way through a replacement (its first chunks applied, the rest in a
later batch) the count is briefly below the stored one; a mismatch that lasts is real.

Each index worker holds only the table partitions assigned to it, so its count covers the documents
of those partitions: summed over the index workers (``sum by (tenant)`` in PromQL) it is the
tenant's whole count; with one index worker (the default, and always with the embedded store) its
own count is complete.

The sudden-drop rule (the seed: "alert on sudden drops in vector_count"), the same numbers as the
``RAGIndexPointsDropped`` alert in deploy/prometheus/alerts.yml: the stored count fell by more than
``max(DROP_MIN_POINTS, DROP_RATIO * before)`` points beyond what the expected count fell by (deletes
and shrinks are not a drop).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DROP_MIN_POINTS",
    "DROP_RATIO",
    "ExpectedCounter",
    "TenantCounts",
    "count_expected",
    "is_sudden_drop",
    "tenant_of",
    "unexplained_drop",
]

#: a drop smaller than this many points is never sudden (a small tenant's noise)
DROP_MIN_POINTS = 100
#: ... nor one below this share of the count before it
DROP_RATIO = 0.1


@dataclass
class TenantCounts:
    """What a worker's version tables say about a tenant (its own partitions)."""

    documents: int = 0  #: documents applied and not deleted
    deleted_documents: int = 0  #: documents whose last applied version is a delete
    expected_points: int = 0  #: chunk slots at their document's applied version, documents not deleted


def tenant_of(key: str) -> str:
    """The tenant of a table key ``tenant/doc_id[/chunk_index]`` (a doc_id may hold '/')."""
    return key.partition("/")[0]


class ExpectedCounter:
    """Counts per tenant, fed the items of ``applied-versions`` (``tenant/doc_id`` -> ``[version,
    deleted]``) first, then those of ``chunk-slots`` (``tenant/doc_id/chunk_index`` -> ``[version,
    content_hash]``), one at a time (a table is never held in memory; only the live documents'
    versions are). ``tenant``: that tenant's items only. A slot whose document has no applied
    version is not counted."""

    def __init__(self, tenant: str | None = None) -> None:
        self._prefix = None if tenant is None else f"{tenant}/"
        self._live: dict[str, int] = {}  # doc key -> applied version, documents not deleted
        self.counts: dict[str, TenantCounts] = {}

    def doc(self, key: str, value: Any) -> None:
        if value is None or (self._prefix is not None and not key.startswith(self._prefix)):
            return
        counts = self.counts.setdefault(tenant_of(key), TenantCounts())
        if value[1]:
            counts.deleted_documents += 1
        else:
            counts.documents += 1
            self._live[key] = int(value[0])

    def slot(self, key: str, value: Any) -> None:
        if value is None or (self._prefix is not None and not key.startswith(self._prefix)):
            return
        if self._live.get(key.rpartition("/")[0]) == int(value[0]):
            self.counts[tenant_of(key)].expected_points += 1


def count_expected(
    doc_states: Iterable[tuple[str, Any]], slots: Iterable[tuple[str, Any]], *, tenant: str | None = None
) -> dict[str, TenantCounts]:
    """:class:`ExpectedCounter` over two tables' items at once."""
    counter = ExpectedCounter(tenant)
    for key, value in doc_states:
        counter.doc(key, value)
    for key, value in slots:
        counter.slot(key, value)
    return counter.counts


def unexplained_drop(points_before: int, expected_before: int, points_now: int, expected_now: int) -> int:
    """Points the store lost that the pipeline did not remove: the stored count's fall minus the
    expected count's fall (deletes, shrinks). Negative or zero when nothing is unexplained."""
    return (points_before - points_now) - max(expected_before - expected_now, 0)


def is_sudden_drop(points_before: int, expected_before: int, points_now: int, expected_now: int) -> bool:
    """The seed's sudden drop, as the alert computes it over 5 minutes."""
    lost = unexplained_drop(points_before, expected_before, points_now, expected_now)
    return lost > max(DROP_MIN_POINTS, DROP_RATIO * points_before)
