"""``rag-streams reindex``: the pure rules (the I/O is in ``commands_reindex.py``).

A reindex builds the tenant's next physical collection ``{prefix}_{tenant}__v{n+1}`` beside the
aliased ``__v{n}`` from ``rag.documents.latest`` (the compacted source of truth), under a
consumer group of its own, while the live pipeline keeps writing to the alias:

1. **build**: replay the tenant's records into ``__v{n+1}`` until the group's positions reach
   the end offsets (:func:`caught_up`; records keep arriving, so the ends are read again);
2. **flip**: one atomic alias update (delete + create): queries and the index stage move over;
3. **tail**: replay up to the end offsets taken *after* the flip (plus the embed stage's model
   cache time): whatever the index stage wrote to the old collection went through the latest
   topic first, so the new one misses nothing;
4. **drop** the old generation after a grace period.

Writes are version-guarded and rewrite points of the same version (their vectors are the new
collection's model), so the replay and the live index stage can race in any order.
Interrupted, it resumes (:func:`plan_resume`): the unfinished ``__v{n+1}`` is continued from the
group's committed offsets, or, if the alias was flipped already, only the tail and drop remain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag_streams.adapters.codecs import RAW
from rag_streams.adapters.store.base import Collection, Point
from rag_streams.errors import CliError, PermanentError
from rag_streams.rules.indexing import payload
from rag_streams.rules.records import DELETE, DELETED_VERSION_HEADER, Chunk, EmbeddingUpsert, RawDocument

__all__ = [
    "DocAction",
    "ResumePlan",
    "caught_up",
    "chase_more",
    "collapse",
    "consumer_group",
    "plan_resume",
    "points_of",
]


def consumer_group(app_id: str, tenant: str, generation: int) -> str:
    """The reindex's own consumer group: its committed offsets are what a restart resumes from."""
    return f"{app_id}-reindex-{tenant}-v{generation}"


@dataclass(frozen=True)
class ResumePlan:
    current: Collection  # aliased when the reindex starts
    generation: int  # the generation built (or being finished)
    existing: Collection | None  # that generation's collection, if an interrupted run created it
    flipped: bool  # the alias already points at it: only the tail and the drop remain
    drop: tuple[str, ...]  # generations to drop after the grace period


def plan_resume(collections: Sequence[Collection]) -> ResumePlan:
    """Decide from the tenant's generations what this run does (new build, resume, or finish)."""
    current = next((c for c in collections if c.aliased), None)
    if current is None:
        raise CliError("the tenant has no collection yet: nothing to reindex")
    older = tuple(c.name for c in collections if c.generation < current.generation)
    if older:  # a run flipped the alias and was stopped before dropping the old generation
        return ResumePlan(current, current.generation, current, True, older)
    newer = sorted((c for c in collections if c.generation > current.generation), key=lambda c: c.generation)
    if newer:  # the unfinished build: continue into the newest, drop any other leftover
        target = newer[-1]
        return ResumePlan(current, target.generation, target, False, (current.name, *(c.name for c in newer[:-1])))
    return ResumePlan(current, current.generation + 1, None, False, (current.name,))


def caught_up(positions: Mapping[Any, int], ends: Mapping[Any, int]) -> bool:
    """Every partition's position has reached its end offset (read_committed: the stable end)."""
    return all(positions.get(tp, 0) >= end for tp, end in ends.items())


#: rounds of catching up with rag.documents.latest before the alias flips
CHASE_ROUNDS = 3


def chase_more(rounds: int, positions: Mapping[Any, int], ends: Mapping[Any, int]) -> bool:
    """Before the flip: read on to the current end while behind it, at most ``CHASE_ROUNDS`` times.

    Under writes that arrive faster than the reindex embeds them, "until caught up" never ends
    (a reindex under sustained load never flipped). What is left is applied by the tail after the
    flip, which reads to the end offsets of that moment, while the live index stage already
    writes to the new collection."""
    return rounds < CHASE_ROUNDS and not caught_up(positions, ends)


@dataclass(frozen=True)
class DocAction:
    doc_id: str
    doc: RawDocument | None  # the accepted version to index; None: the document was deleted
    deleted_upto: int | None = None  # a tombstone's deleted version (None: unknown, delete all)


def _header(headers: Any, name: str) -> bytes | None:
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return next((v for k, v in pairs if k == name), None)


def collapse(records: Iterable[tuple[bytes | None, bytes | None, Any]], tenant: str) -> tuple[list[DocAction], int]:
    """The tenant's actions of a batch of latest-topic records (key, value, headers), the last
    record per document winning (a key's records share a partition, in order). Also returns how
    many records could not be decoded (they were validated before reaching the topic)."""
    prefix = f"{tenant}/".encode()
    actions: dict[str, DocAction] = {}
    bad = 0
    for key, value, headers in records:
        if key is None or not key.startswith(prefix):
            continue
        try:
            doc_id = key[len(prefix) :].decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
            continue
        actions.pop(doc_id, None)
        if value is None:
            raw = _header(headers, DELETED_VERSION_HEADER)
            upto = int(raw) if raw is not None and raw.isdigit() else None
            actions[doc_id] = DocAction(doc_id, None, upto)
            continue
        try:
            doc = RAW.decode(value)
        except PermanentError:
            bad += 1
            continue
        if doc.tenant_id != tenant or doc.doc_id != doc_id:
            bad += 1
        elif doc.op == DELETE:
            actions[doc_id] = DocAction(doc_id, None, doc.version)
        else:
            actions[doc_id] = DocAction(doc_id, doc)
    return list(actions.values()), bad


def points_of(chunks: Sequence[Chunk], vectors: Sequence[Any], model: str) -> list[Point]:
    """Qdrant points of a document's chunks with their vectors: the payload the index stage writes."""
    out = []
    for chunk, vector in zip(chunks, vectors, strict=True):
        item = EmbeddingUpsert.of(chunk, b"", model, len(vector))
        out.append(Point(chunk.chunk_id, [float(x) for x in vector], payload(item)))
    return out
