"""What every vector store shares: the records (Point, Hit, Collection), the protocols (Collections,
what a reindex or restore writes through; VectorStore, what the pipeline and the API use) and the
rules both implementations apply (the tenant's own generations, reuse plans, complete versions).

No client library is imported here: the embedded Qdrant Edge store does not load qdrant-client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rag_streams.errors import BadInput

__all__ = [
    "Collection",
    "Collections",
    "Hit",
    "Point",
    "VectorStore",
    "complete_versions",
    "hit_vector",
    "own_generation",
    "plan_reuse",
]


@dataclass(frozen=True, slots=True)
class Collection:
    """A tenant's physical collection ``{prefix}_{tenant}__v{n}`` and the model of its vectors."""

    name: str
    generation: int
    model: str  # the model name points carry in their payload
    dim: int
    source: str | None = None  # what a worker loads for it; None = its own RAG_EMBED_MODEL
    aliased: bool = False  # the tenant's alias points at it: queries read it

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Collection:
        return cls(**{f: body[f] for f in cls.__slots__ if f in body})

    @classmethod
    def from_meta(cls, name: str, generation: int, meta: dict[str, Any], aliased: bool) -> Collection:
        """From the metadata a store keeps with the collection (model, dim, source)."""
        source = meta.get("source")
        return cls(
            name, generation, str(meta.get("model", "")), int(meta.get("dim", 0)), source and str(source), aliased
        )


def own_generation(alias: str, tenant: str, collection: str) -> str:
    """``collection`` if it is one of the tenant's generations (``{alias}__v{n}``), never another's."""
    if not re.fullmatch(re.escape(alias) + r"__v\d+", collection):
        raise BadInput(f"{collection!r} is not a collection of tenant {tenant!r}")
    return collection


@dataclass(frozen=True, slots=True)
class Point:
    id: str
    vector: Sequence[float]
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any]
    vector: Sequence[float] | None = None  #: searches return it (the fallback index keeps popular chunks)


class Collections(Protocol):
    """What a reindex writes through: the ``VectorStore`` itself (Qdrant server, or embedded Qdrant
    no worker holds) or ``RemoteCollections`` (the index worker's admin API, embedded Qdrant)."""

    async def collections(self, tenant: str) -> list[Collection]: ...
    async def create_generation(
        self, tenant: str, generation: int, dim: int, model: str, source: str | None = None
    ) -> Collection: ...
    async def upsert(
        self,
        tenant: str,
        points: Sequence[Point],
        *,
        version: int,
        same_version: bool = False,
        collection: str | None = None,
    ) -> None: ...
    async def delete_doc(
        self,
        tenant: str,
        doc_id: str,
        *,
        below_version: int | None = None,
        upto_version: int | None = None,
        collection: str | None = None,
    ) -> None: ...
    async def trim_doc(self, tenant: str, doc_id: str, *, version: int, collection: str | None = None) -> None: ...
    async def flip_alias(self, tenant: str, collection: str) -> None: ...
    async def drop_collection(self, tenant: str, collection: str) -> None: ...
    async def close(self) -> None: ...


class VectorStore(Collections, Protocol):
    """What the pipeline, the API and the commands use: the Collections a reindex writes through, and
    the points' reads and writes."""

    async def ensure_tenant(self, tenant: str, dim: int, model: str) -> str: ...
    async def reuse(self, tenant: str, updates: Sequence[tuple[str, dict[str, Any]]], *, version: int) -> list[str]: ...
    async def retag(
        self, tenant: str, doc_id: str, common: dict[str, Any], *, previous: int, version: int, expect: int
    ) -> int: ...
    async def search(
        self, tenant: str, vector: Sequence[float], k: int, *, doc_ids: Sequence[str] | None = None
    ) -> list[Hit]: ...
    async def points(self, tenant: str) -> list[Hit]: ...
    async def export(
        self, tenant: str, collection: str | None = None, *, offset: str | None = None, limit: int = 1000
    ) -> tuple[list[Point], str | None]: ...
    async def count(self, tenant: str) -> int: ...
    async def doc_versions(self, tenant: str, doc_ids: Sequence[str]) -> dict[str, int]: ...
    async def has_tenant(self, tenant: str) -> bool: ...
    async def current_collection(self, tenant: str) -> Collection | None: ...


def hit_vector(vector: Any) -> list[float] | None:
    """A point's vector as the client returns it (unnamed, or the default of named vectors): both
    clients build a fresh list of Python floats, kept as it is (copying 5 hits x 384 floats cost
    65 us a search)."""
    vector = vector.get("") if isinstance(vector, dict) else vector
    return vector if isinstance(vector, list) else None


#: payload keys that are the same for every version of a chunk slot whose text is unchanged
SLOT_KEYS = frozenset({"chunk_index", "text", "content_hash"})


def plan_reuse(
    updates: Sequence[tuple[str, dict[str, Any]]], stored: dict[str, Any]
) -> tuple[list[str], list[tuple[dict[str, Any], list[Any]]]]:
    """``stored``: point id -> its stored content hash. Returns the ids that cannot be reused (not
    stored with that hash: they need an embedding), and the rest as (payload, ids) groups: the
    points of one document share everything but their slot's own keys, which stay as stored, so
    a document is one filtered ``set_payload`` whatever its chunk count."""
    missing = [pid for pid, body in updates if pid not in stored or stored[pid] != body.get("content_hash")]
    groups: dict[str, tuple[dict[str, Any], list[Any]]] = {}  # point ids
    for pid, body in updates:
        if pid not in missing:
            common = {k: v for k, v in body.items() if k not in SLOT_KEYS}
            groups.setdefault(json.dumps(common, sort_keys=True), (common, []))[1].append(pid)
    return missing, list(groups.values())


def complete_versions(payloads: Iterable[dict[str, Any]]) -> dict[str, int]:
    """doc_id -> version, for documents whose points are one version, as many as its chunk count
    (read-your-writes: a document with no point, or in the middle of a replacement, is left out)."""
    stored: dict[str, list[tuple[int, int]]] = {}  # doc_id -> (version, chunk_count) per point
    for body in payloads:
        point = (int(body.get("version", 0)), int(body.get("chunk_count", 0)))
        stored.setdefault(str(body.get("doc_id")), []).append(point)
    return {
        doc_id: points[0][0]
        for doc_id, points in stored.items()
        if len(set(points)) == 1 and len(points) == points[0][1]
    }
