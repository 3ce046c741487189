"""What the embed stage does with a batch of chunks, decided purely from its tables.

Per chunk slot (``tenant/doc_id/chunk_index``) the stage remembers ``[version, content_hash]``
of the embedding it emitted last; per document ``[version, chunk_count, deleted]``. With them:

- a chunk version already emitted (a replay) is dropped, and so is a delete already forwarded;
- a chunk whose text is unchanged since the version emitted for its slot is **reused**: the
  index stage moves the stored point to the new version, and the model is not run;
- everything else is embedded;
- a retag (an unchanged document re-published, rag_streams/rules/retag.py) is forwarded as one
  record when this stage emitted the previous version in full (the doc row is ``[previous,
  chunk_count, False]``); the doc row takes the new version, the slot rows keep the version they
  were emitted at (every slot check compares the chunk with the doc row first, and a later
  version is higher than both). A replay is dropped; a retag of a version this stage did not
  emit in full is refused (dead-lettered: ``verify --repair`` re-chunks it).

Slots that a shrink or a delete removed from the collection are forgotten, so text that comes
back later is embedded again rather than "reused" from a point that no longer exists.
Tables are exact here because Faust restores them from committed changelogs (rag_streams/_faust/compat.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from rag_streams.rules.records import DELETE, Chunk

__all__ = ["Action", "EmbedPlan", "plan_embeddings", "slot_of"]


class Action(Enum):
    EMBED = "embed"
    REUSE = "reuse"  # unchanged text: move the point's version, no model call
    FORWARD = "forward"  # a delete marker: pass on
    RETAG = "retag"  # an unchanged document's one retag record: pass on, the stored points move
    REFUSE = "refuse"  # a retag of a version not emitted in full: dead-letter (plan.refusals)
    DROP = "drop"  # a replay or an out-of-date chunk


def slot_of(chunk: Chunk) -> str:
    return f"{chunk.tenant_id}/{chunk.doc_id}/{chunk.chunk_index}"


@dataclass
class EmbedPlan:
    actions: list[Action] = field(default_factory=list)
    #: position in the batch -> the table writes it causes, in order: (table "slot" | "doc", key,
    #: value); value None removes the key. Each is written under the event that caused it.
    writes_by_position: dict[int, list[tuple[str, str, list[object] | None]]] = field(default_factory=dict)
    #: position -> why a retag was refused
    refusals: dict[int, str] = field(default_factory=dict)


def plan_embeddings(
    chunks: Sequence[Chunk],
    repairs: Sequence[bool],
    docs: Mapping[str, list[object] | None],
    slots: Mapping[str, list[object] | None],
    retags: Sequence[int | None] | None = None,
) -> EmbedPlan:
    """``retags``: per position, the previous version a retag record moves from (None: a chunk)."""
    plan = EmbedPlan()
    doc_state: dict[str, list[object] | None] = dict(docs)
    slot_state: dict[str, list[object] | None] = dict(slots)

    def write(pos: int, table: str, key: str, value: list[object] | None) -> None:
        plan.writes_by_position.setdefault(pos, []).append((table, key, value))
        (slot_state if table == "slot" else doc_state)[key] = value

    for pos, (chunk, repair) in enumerate(zip(chunks, repairs, strict=True)):
        dkey = chunk.key
        doc = doc_state.get(dkey)
        doc_version = int(doc[0]) if doc else -1  # type: ignore[call-overload]
        known_count = int(doc[1]) if doc else 0  # type: ignore[call-overload]
        previous = retags[pos] if retags else None
        if previous is not None:
            if chunk.version <= doc_version:  # a replay (or older than what was emitted since)
                plan.actions.append(Action.DROP)
            elif doc is not None and [doc_version, known_count, bool(doc[2])] == [previous, chunk.chunk_count, False]:
                plan.actions.append(Action.RETAG)
                write(pos, "doc", dkey, [chunk.version, chunk.chunk_count, False])
            else:
                plan.actions.append(Action.REFUSE)
                plan.refusals[pos] = (
                    f"retag of v{chunk.version}: the embed stage did not emit v{previous} of this document in"
                    f" full ({chunk.chunk_count} chunks; its last emitted version: {doc}); run verify --repair"
                )
            continue
        if chunk.op == DELETE:
            deleted = bool(doc[2]) if doc else False
            if not repair and (chunk.version < doc_version or (deleted and chunk.version == doc_version)):
                # stale, or a replay of a delete already forwarded: a revoke can commit the output
                # of an event whose offset the new owner has not seen committed, so it comes again
                plan.actions.append(Action.DROP)
                continue
            plan.actions.append(Action.FORWARD)
            if chunk.version >= doc_version:
                for i in range(known_count):
                    write(pos, "slot", f"{dkey}/{i}", None)
                write(pos, "doc", dkey, [chunk.version, 0, True])
            continue
        skey = slot_of(chunk)
        slot = slot_state.get(skey)
        if not repair and (chunk.version < doc_version or (slot is not None and int(slot[0]) >= chunk.version)):  # type: ignore[call-overload]
            plan.actions.append(Action.DROP)
            continue
        reusable = not repair and slot is not None and slot[1] == chunk.content_hash
        plan.actions.append(Action.REUSE if reusable else Action.EMBED)
        write(pos, "slot", skey, [chunk.version, chunk.content_hash])
        if chunk.chunk_index == chunk.chunk_count - 1 and chunk.version >= doc_version:
            for i in range(chunk.chunk_count, known_count):  # the tail a shrink removes
                write(pos, "slot", f"{dkey}/{i}", None)
            write(pos, "doc", dkey, [chunk.version, chunk.chunk_count, False])
    return plan
