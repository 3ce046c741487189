"""The backup's files (Parquet round trip, metadata checks) and the offset-lowering rule, without Kafka."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rag_streams.adapters.backup import (
    META_FILE,
    POINTS_FILE,
    BackupMeta,
    PointsWriter,
    Presence,
    read_hashes,
    read_meta,
    read_points,
    read_vectors,
    recorded_offsets,
)
from rag_streams.adapters.codecs import RAW
from rag_streams.adapters.store.base import Point
from rag_streams.errors import CliError
from rag_streams.rules.ids import point_id
from rag_streams.rules.records import DELETE, DELETED_VERSION_HEADER, UPSERT, RawDocument

DIM = 3


def pt(doc: str, index: int, version: int, count: int, *, tenant: str = "acme") -> Point:
    rng = np.random.default_rng(hash((doc, index, version)) % 2**32)
    vector = rng.standard_normal(DIM).astype(np.float32).tolist()
    payload = {
        "tenant_id": tenant,
        "doc_id": doc,
        "chunk_index": index,
        "chunk_count": count,
        "version": version,
        "text": f"{doc} #{index} é",
        "content_hash": f"h-{doc}-{index}",
        "metadata": {"path": doc},
    }
    return Point(point_id(tenant, doc, index), vector, payload)


def meta(points: int, **over: Any) -> BackupMeta:
    fields: dict[str, Any] = dict(
        tenant="acme",
        collection="rag_acme__v1",
        generation=1,
        model="m",
        source=None,
        dim=DIM,
        distance="cosine",
        chunk_tokens=256,
        chunk_overlap=32,
        topic="rag.documents.latest",
        offsets={0: 3, 1: 7},
        end_offsets={0: 5, 1: 7},
        points=points,
        documents=2,
        created_at="2025-01-01T00:00:00+00:00",
    )
    return BackupMeta(**{**fields, **over})


def write_backup(folder: Path, pages: list[list[Point]], **over: Any) -> BackupMeta:
    writer = PointsWriter(folder, DIM)
    for page in pages:
        writer.write(page)
    writer.close()
    m = meta(writer.count, **over)
    (folder / META_FILE).write_text(json.dumps(m.to_json()))
    return m


def test_parquet_round_trip_keeps_ids_vectors_and_payloads(tmp_path: Path) -> None:
    pages = [[pt("a.md", i, 5, 3) for i in range(3)], [pt("b.md", 0, 9, 1)]]
    m = write_backup(tmp_path, pages)
    assert read_meta(tmp_path) == m
    schema = pq.read_schema(tmp_path / POINTS_FILE)
    assert schema.field("id").type == pa.string() and schema.field("doc_id").type == pa.string()
    assert schema.field("version").type == pa.int64() and schema.field("payload").type == pa.string()
    assert schema.field("vector").type == pa.list_(pa.float32(), DIM)  # fixed_size_list<float32>[3]
    table = pq.read_table(tmp_path / POINTS_FILE)
    assert table.column("version").to_pylist() == [5, 5, 5, 9]
    assert table.column("doc_id").to_pylist() == ["a.md", "a.md", "a.md", "b.md"]
    back = [p for batch in read_points(tmp_path, batch=2) for p in batch]
    written = [p for page in pages for p in page]
    assert [p.id for p in back] == [p.id for p in written]
    assert [p.payload for p in back] == [p.payload for p in written]
    for got, want in zip(back, written, strict=True):
        assert np.array_equal(np.asarray(got.vector, np.float32), np.asarray(want.vector, np.float32))
    assert read_hashes(tmp_path)[written[1].id] == "h-a.md-1"
    only = read_vectors(tmp_path, [written[3].id, "not-there"])
    assert list(only) == [written[3].id] and np.allclose(only[written[3].id], written[3].vector)


def test_a_folder_that_is_not_a_consistent_backup_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="is not a backup"):
        read_meta(tmp_path)
    write_backup(tmp_path, [[pt("a.md", 0, 1, 1)]])
    good = json.loads((tmp_path / META_FILE).read_text())
    for change, message in [
        ({"format": "other/1"}, "not a rag-streams backup"),
        ({"dim": DIM + 1}, "does not hold 4-dim points"),
        ({"points": 2}, "holds 1 point"),
    ]:
        (tmp_path / META_FILE).write_text(json.dumps({**good, **change}))
        with pytest.raises(CliError, match=message):
            read_meta(tmp_path)
    (tmp_path / META_FILE).write_text("{not json")
    with pytest.raises(CliError, match="not a rag-streams backup"):
        read_meta(tmp_path)


def test_a_vector_of_another_size_is_refused_when_writing(tmp_path: Path) -> None:
    writer = PointsWriter(tmp_path, DIM)
    with pytest.raises(CliError, match="another size"):
        writer.write([Point("x", [1.0, 2.0], {"doc_id": "a"})])
    writer.close()


def rec(partition: int, offset: int, doc: str, version: int, *, op: str = UPSERT, tenant: str = "acme") -> Any:
    key = f"{tenant}/{doc}".encode()
    if op == "tombstone":
        return (partition, offset, key, None, [(DELETED_VERSION_HEADER, str(version).encode())])
    body = RawDocument(tenant, doc, version, op=DELETE if op == DELETE else UPSERT, text="" if op == DELETE else "t")
    return (partition, offset, key, RAW.encode(body), [])


def test_offsets_stay_at_the_end_when_every_record_is_in_the_points() -> None:
    presence = Presence.of(p.payload for p in [pt("a.md", 0, 2, 2), pt("a.md", 1, 2, 2), pt("b.md", 0, 4, 1)])
    records = [
        rec(0, 0, "a.md", 1),
        rec(0, 1, "a.md", 2),
        rec(1, 0, "b.md", 4),
        rec(1, 1, "gone.md", 3, op="tombstone"),
    ]
    records.append(rec(1, 2, "a.md", 99, tenant="other"))  # another tenant's record never lowers
    assert recorded_offsets({0: 2, 1: 3}, records, "acme", presence) == {0: 2, 1: 3}


def test_each_partition_is_lowered_to_its_first_record_not_fully_present() -> None:
    stored = [pt("a.md", 0, 2, 2), pt("a.md", 1, 1, 2), pt("b.md", 0, 4, 1), pt("c.md", 0, 6, 1), pt("d.md", 0, 3, 1)]
    presence = Presence.of(p.payload for p in stored)
    records = [
        rec(0, 0, "b.md", 4),  # present
        rec(0, 3, "a.md", 2),  # a.md is mid-replacement (one chunk still v1): not present
        rec(0, 5, "b.md", 5),  # the points have b.md v4 only: not present, but above 3
        rec(1, 0, "c.md", 5),  # c.md is stored at v6: v5 is covered
        rec(1, 4, "d.md", 3, op="tombstone"),  # d.md still has a point at v3: the delete is missing
        rec(2, 1, "c.md", 6, op=DELETE),  # a delete of v6: its point is still there
        rec(2, 9, "e.md", 1),  # beyond the end offsets read before the scan: ignored
    ]
    assert recorded_offsets({0: 8, 1: 6, 2: 9}, records, "acme", presence) == {0: 3, 1: 4, 2: 1}


def test_records_fed_in_batches_give_the_same_offsets() -> None:
    presence = Presence.of([pt("a.md", 0, 1, 1).payload])
    records = [rec(0, 0, "a.md", 1), rec(0, 1, "x.md", 1), rec(0, 2, "y.md", 1)]
    first = recorded_offsets({0: 3}, records[:1], "acme", presence)
    assert recorded_offsets(recorded_offsets(first, records[1:2], "acme", presence), records[2:], "acme", presence) == {
        0: 1
    }
