"""``rag-streams verify``: audit a tenant's collection against ``rag.documents.latest``. Pure.

The compacted latest topic holds the accepted version of every live document (a tombstone
for a deleted one). Chunking it again gives the exact point set the collection must hold:
point id, version and content hash per chunk slot. Anything else is drift:

- **missing**: an expected point is not in the collection;
- **stale**: the point is there with another version or content hash;
- **orphan**: a point no live document version explains (a deleted document, a shrunk tail);
- **duplicate**: more than one point holds the same document chunk slot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rag_streams.rules.records import Chunk, RawDocument

__all__ = ["Drift", "Expected", "compare", "expected_points"]


@dataclass(frozen=True, slots=True)
class Expected:
    id: str
    doc_id: str
    chunk_index: int
    version: int
    content_hash: str


@dataclass
class Drift:
    missing: list[Expected] = field(default_factory=list)
    stale: list[tuple[Expected, Mapping[str, Any]]] = field(default_factory=list)
    orphans: list[Mapping[str, Any]] = field(default_factory=list)
    duplicates: list[Mapping[str, Any]] = field(default_factory=list)
    checked_points: int = 0

    @property
    def checked_docs(self) -> int:
        return len(self.live_docs)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.orphans or self.duplicates)

    def to_republish(self) -> set[str]:
        """Live documents whose points drifted: replaying their latest version repairs them."""
        return {e.doc_id for e in self.missing} | {e.doc_id for e, _ in self.stale} | self.live_orphan_docs

    def to_delete(self) -> dict[str, int]:
        """Documents that are not live but still have points: doc_id -> highest version held."""
        out: dict[str, int] = {}
        for p in self.orphans + self.duplicates:
            doc = str(p.get("doc_id"))
            if doc not in self.live_docs:
                out[doc] = max(out.get(doc, 0), int(p.get("version", 0)))
        return out

    live_docs: set[str] = field(default_factory=set, repr=False)
    live_orphan_docs: set[str] = field(default_factory=set, repr=False)

    def report(self, tenant: str) -> str:
        lines = [
            f"tenant {tenant}: {self.checked_docs} live document(s), {self.checked_points} point(s) in the collection",
            f"missing {len(self.missing)}, stale {len(self.stale)}, orphan {len(self.orphans)}, "
            f"duplicate {len(self.duplicates)}",
        ]
        lines += [f"  missing   {e.doc_id} #{e.chunk_index} v{e.version} ({e.id})" for e in self.missing[:20]]
        lines += [
            f"  stale     {e.doc_id} #{e.chunk_index}: has v{p.get('version')}, expected v{e.version} ({e.id})"
            for e, p in self.stale[:20]
        ]
        lines += [
            f"  orphan    {p.get('doc_id')} #{p.get('chunk_index')} v{p.get('version')} ({p.get('id')})"
            for p in self.orphans[:20]
        ]
        lines += [
            f"  duplicate {p.get('doc_id')} #{p.get('chunk_index')} v{p.get('version')} ({p.get('id')})"
            for p in self.duplicates[:20]
        ]
        lines.append("no drift" if self.ok else "DRIFT")
        return "\n".join(lines)


def expected_points(docs: Iterable[RawDocument], chunker: Callable[[RawDocument], list[Chunk]]) -> dict[str, Expected]:
    """The point set the live documents imply, by point id."""
    out: dict[str, Expected] = {}
    for doc in docs:
        for c in chunker(doc):
            out[c.chunk_id] = Expected(c.chunk_id, c.doc_id, c.chunk_index, c.version, c.content_hash)
    return out


def compare(expected: Mapping[str, Expected], points: Iterable[Mapping[str, Any]]) -> Drift:
    """Classify every expected and every actual point. ``points`` carry ``id`` and the payload."""
    drift = Drift()
    drift.live_docs = {e.doc_id for e in expected.values()}
    by_slot: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
    seen: set[str] = set()
    for p in points:
        drift.checked_points += 1
        by_slot[(str(p.get("doc_id")), int(p.get("chunk_index", -1)))].append(p)
        want = expected.get(str(p["id"]))
        if want is None:
            drift.orphans.append(p)
            if p.get("doc_id") in drift.live_docs:
                drift.live_orphan_docs.add(str(p.get("doc_id")))
            continue
        seen.add(want.id)
        if int(p.get("version", -1)) != want.version or p.get("content_hash") != want.content_hash:
            drift.stale.append((want, p))
    drift.missing = [e for pid, e in expected.items() if pid not in seen]
    for holders in by_slot.values():
        if len(holders) > 1:
            drift.duplicates += [p for p in holders if str(p["id"]) not in expected]
    # a duplicate is reported once, as a duplicate rather than also as an orphan
    dup_ids = {str(p["id"]) for p in drift.duplicates}
    drift.orphans = [p for p in drift.orphans if str(p["id"]) not in dup_ids]
    return drift
