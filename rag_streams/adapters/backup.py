"""``rag-streams backup`` / ``restore``: the backup's files and the consistency rule. No Kafka, no store.

A backup is a directory:

- ``points.parquet``: every point of the tenant's aliased collection, one row each: ``id``
  (string), ``doc_id`` (string), ``version`` (int64), ``vector`` (``fixed_size_list<float32>[dim]``)
  and ``payload`` (the point's whole payload as a JSON string);
- ``backup.json``: what the points are (tenant, collection, generation, model, source, dim,
  distance, the chunking settings, counts) and the offsets of ``rag.documents.latest`` the restore
  replays from. It is written last: a directory without it is not a backup.

Consistency (:func:`recorded_offsets`): the end offsets ``O`` of the latest topic are read *before*
the points are scanned; each partition's offset is then lowered to the first record below ``O``
of the tenant whose document version is not fully present in the scanned points. Replaying from
the recorded offsets after a restore brings every such document (and everything newer) back;
the replay is version-guarded and idempotent, so for an up-to-date backup it changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rag_streams.adapters.store.base import Point, complete_versions
from rag_streams.errors import CliError
from rag_streams.rules.reindex import DocAction, collapse

__all__ = [
    "FORMAT",
    "META_FILE",
    "POINTS_FILE",
    "BackupMeta",
    "PointsWriter",
    "Presence",
    "read_hashes",
    "read_meta",
    "read_points",
    "read_vectors",
    "recorded_offsets",
    "schema",
]

FORMAT = "rag-streams-backup/1"
META_FILE = "backup.json"
POINTS_FILE = "points.parquet"


@dataclass(frozen=True)
class BackupMeta:
    tenant: str
    collection: str  # the physical collection backed up (``{prefix}_{tenant}__v{n}``)
    generation: int
    model: str  # the model name the points' payloads carry
    source: str | None  # what a worker loads for it (None: its own RAG_EMBED_MODEL)
    dim: int
    distance: str
    chunk_tokens: int  # the chunking the point ids and texts came from: a replay must chunk alike
    chunk_overlap: int
    topic: str  # rag.documents.latest under the backup's prefix
    offsets: dict[int, int]  # partition -> the offset a restore replays from (see recorded_offsets)
    end_offsets: dict[int, int]  # partition -> the end offsets read before the scan (O)
    points: int
    documents: int  # documents stored in full among the points
    created_at: str
    format: str = FORMAT
    lowered: dict[int, int] = field(default_factory=dict)  # partition -> records replayed below O

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        for key in ("offsets", "end_offsets", "lowered"):
            body[key] = {str(p): o for p, o in sorted(body[key].items())}
        return body

    @classmethod
    def from_json(cls, body: Any) -> BackupMeta:
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT}")
        fields = dict(body)
        for key in ("offsets", "end_offsets", "lowered"):
            fields[key] = {int(p): int(o) for p, o in dict(fields.get(key) or {}).items()}
        return cls(**fields)


def schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.string()),
            ("doc_id", pa.string()),
            ("version", pa.int64()),
            ("vector", pa.list_(pa.float32(), dim)),
            ("payload", pa.string()),
        ]
    )


class PointsWriter:
    """Writes pages of points into ``points.parquet`` (one row group per page), keeping only what
    the consistency rule needs: (doc_id, version, chunk_count) per point."""

    def __init__(self, folder: Path, dim: int) -> None:
        self.dim = dim
        self.path = folder / POINTS_FILE
        self._writer = pq.ParquetWriter(self.path, schema(dim), compression="zstd")
        self.presence = Presence()
        self.count = 0

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        flat = np.asarray([list(p.vector) for p in points], dtype=np.float32)
        if flat.shape != (len(points), self.dim):
            raise CliError(f"the collection holds a vector of another size than its {self.dim} dimensions")
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1), pa.float32()), self.dim)
        columns = [
            pa.array([p.id for p in points], pa.string()),
            pa.array([str(p.payload.get("doc_id")) for p in points], pa.string()),
            pa.array([int(p.payload.get("version", 0)) for p in points], pa.int64()),
            vectors,
            pa.array([json.dumps(p.payload, ensure_ascii=False, sort_keys=True) for p in points], pa.string()),
        ]
        self._writer.write_table(pa.Table.from_arrays(columns, schema=schema(self.dim)))
        self.presence.add(p.payload for p in points)
        self.count += len(points)

    def close(self) -> None:
        self._writer.close()


def read_meta(folder: Path) -> BackupMeta:
    """The backup's metadata, checked against its Parquet file; one line (CliError) if it is not a backup."""
    try:
        meta = BackupMeta.from_json(json.loads((folder / META_FILE).read_text()))
    except FileNotFoundError:
        raise CliError(f"{folder} is not a backup (no {META_FILE})") from None
    except (ValueError, TypeError) as exc:
        raise CliError(f"{folder / META_FILE} is not a rag-streams backup: {exc}") from None
    try:
        found = pq.read_schema(folder / POINTS_FILE)
        rows = pq.ParquetFile(folder / POINTS_FILE).metadata.num_rows
    except (OSError, pa.ArrowInvalid) as exc:
        raise CliError(f"{folder / POINTS_FILE}: not readable as Parquet: {exc}") from None
    if not found.equals(schema(meta.dim)):
        raise CliError(f"{folder / POINTS_FILE} does not hold {meta.dim}-dim points as {META_FILE} says")
    if rows != meta.points:
        raise CliError(f"{folder / POINTS_FILE} holds {rows} point(s), {META_FILE} says {meta.points}")
    return meta


def read_points(folder: Path, batch: int = 1000) -> Iterator[list[Point]]:
    """The backup's points, ``batch`` at a time."""
    for part in pq.ParquetFile(folder / POINTS_FILE).iter_batches(batch_size=batch):
        ids, vectors, payloads = part.column("id"), part.column("vector"), part.column("payload")
        flat = vectors.values.to_numpy(zero_copy_only=False).reshape(len(part), -1)
        yield [
            Point(pid, row.tolist(), json.loads(body))
            for pid, row, body in zip(ids.to_pylist(), flat, payloads.to_pylist(), strict=True)
        ]


def read_hashes(folder: Path) -> dict[str, str | None]:
    """point id -> its content hash (what a restore's catch-up may reuse instead of embedding)."""
    table = pq.read_table(folder / POINTS_FILE, columns=["id", "payload"])
    return {
        pid: json.loads(body).get("content_hash")
        for pid, body in zip(table.column("id").to_pylist(), table.column("payload").to_pylist(), strict=True)
    }


def read_vectors(folder: Path, ids: Iterable[str]) -> dict[str, list[float]]:
    """The saved vectors of these point ids (those in the backup)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    table = pq.read_table(folder / POINTS_FILE, columns=["id", "vector"], filters=[("id", "in", wanted)])
    flat = table.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False)
    rows = flat.reshape(table.num_rows, -1) if table.num_rows else flat
    return {pid: row.tolist() for pid, row in zip(table.column("id").to_pylist(), rows, strict=True)}


class Presence:
    """What the scanned points hold, per document: the version stored in full, the lowest version."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, int, int]] = []  # (doc_id, version, chunk_count) per point
        self._complete: dict[str, int] | None = None
        self._oldest: dict[str, int] = {}

    @classmethod
    def of(cls, payloads: Iterable[Mapping[str, Any]]) -> Presence:
        out = cls()
        out.add(payloads)
        return out

    def add(self, payloads: Iterable[Mapping[str, Any]]) -> None:
        for body in payloads:
            doc, version = str(body.get("doc_id")), int(body.get("version", 0))
            self._rows.append((doc, version, int(body.get("chunk_count", 0))))
            self._oldest[doc] = min(version, self._oldest.get(doc, version))
        self._complete = None

    @property
    def complete(self) -> dict[str, int]:
        """doc_id -> the version stored in full (every chunk, one version)."""
        if self._complete is None:
            self._complete = complete_versions({"doc_id": d, "version": v, "chunk_count": n} for d, v, n in self._rows)
        return self._complete

    def holds(self, action: DocAction) -> bool:
        """Whether a latest-topic record's effect is in the points."""
        if action.doc is not None:  # stored in full at that version or a newer one
            return self.complete.get(action.doc_id, -1) >= action.doc.version
        if action.deleted_upto is None:  # a delete of every version: no point left
            return action.doc_id not in self._oldest
        return self._oldest.get(action.doc_id, action.deleted_upto + 1) > action.deleted_upto


def recorded_offsets(
    ends: Mapping[int, int],
    records: Iterable[tuple[int, int, bytes | None, bytes | None, Any]],
    tenant: str,
    presence: Presence,
) -> dict[int, int]:
    """Per partition, the offset a restore of these points replays ``rag.documents.latest`` from.

    ``ends``: the end offsets read before the points were scanned (or the result of an earlier
    call: records can be fed in batches); ``records``: (partition, offset, key, value, headers) of
    the topic below them, in offset order per partition; ``presence``: what the scanned points
    hold. Each partition's offset is lowered to the first of the tenant's records whose effect is
    not fully present (:meth:`Presence.holds`)."""
    out = dict(ends)
    for partition, offset, key, value, headers in records:
        if partition not in out or offset >= out[partition]:
            continue
        actions, _ = collapse([(key, value, headers)], tenant)
        if actions and not presence.holds(actions[0]):
            out[partition] = offset
    return out
