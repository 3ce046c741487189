"""verify's drift classification: missing, stale, orphan and duplicate points, and what repair replays."""

from __future__ import annotations

from typing import Any

from rag_streams.rules.chunking import WhitespaceTokenizer, chunk_document
from rag_streams.rules.ids import point_id
from rag_streams.rules.records import Chunk, RawDocument
from rag_streams.rules.verify import compare, expected_points


def chunker(doc: RawDocument) -> list[Chunk]:
    return chunk_document(doc, WhitespaceTokenizer(), size=4, overlap=0)


DOCS = [RawDocument("acme", "a.md", 2, text="one two three four five six"), RawDocument("acme", "b.md", 1, text="x y")]


def stored(expected: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"id": e.id, "doc_id": e.doc_id, "chunk_index": e.chunk_index, "version": e.version,
         "content_hash": e.content_hash}
        for e in expected.values()
    ]  # fmt: skip


def test_expected_points_follow_the_chunker() -> None:
    expected = expected_points(DOCS, chunker)
    assert sorted((e.doc_id, e.chunk_index, e.version) for e in expected.values()) == [
        ("a.md", 0, 2),
        ("a.md", 1, 2),
        ("b.md", 0, 1),
    ]
    assert point_id("acme", "a.md", 1) in expected


def test_exact_collection_has_no_drift() -> None:
    expected = expected_points(DOCS, chunker)
    drift = compare(expected, stored(expected))
    assert drift.ok and drift.checked_docs == 2 and drift.checked_points == 3
    assert "no drift" in drift.report("acme")


def test_each_kind_of_drift_is_found_and_repair_targets_it() -> None:
    expected = expected_points(DOCS, chunker)
    points = stored(expected)
    missing = points.pop(0)
    points[0] = {**points[0], "version": 1}  # stale
    points.append({"id": "orphan-1", "doc_id": "gone.md", "chunk_index": 0, "version": 7, "content_hash": "h"})
    points.append({"id": "dup-1", "doc_id": points[1]["doc_id"], "chunk_index": points[1]["chunk_index"], "version": 1})
    drift = compare(expected, points)
    assert [e.id for e in drift.missing] == [missing["id"]]
    assert [e.id for e, _ in drift.stale] == [points[0]["id"]]
    assert [p["id"] for p in drift.orphans] == ["orphan-1"]
    assert [p["id"] for p in drift.duplicates] == ["dup-1"]
    assert not drift.ok
    assert drift.to_delete() == {"gone.md": 7}
    assert drift.to_republish() >= {missing["doc_id"], points[0]["doc_id"]}
    assert "missing 1, stale 1, orphan 1, duplicate 1" in drift.report("acme")


def test_shrunk_tail_is_an_orphan_of_a_live_document_and_replays_it() -> None:
    expected = expected_points(DOCS, chunker)
    tail = {"id": point_id("acme", "b.md", 5), "doc_id": "b.md", "chunk_index": 5, "version": 0, "content_hash": "h"}
    drift = compare(expected, [*stored(expected), tail])
    assert [p["id"] for p in drift.orphans] == [tail["id"]]
    assert drift.to_republish() == {"b.md"} and drift.to_delete() == {}
