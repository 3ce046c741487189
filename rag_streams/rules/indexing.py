"""What the index stage does with a batch of embedding upserts, decided purely from version state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rag_streams.adapters.store.base import SLOT_KEYS
from rag_streams.rules.records import DELETE, EmbeddingUpsert
from rag_streams.rules.versions import DocState, Verdict, judge

__all__ = ["Plan", "Retag", "is_reuse", "payload", "plan_batch", "retag_payload", "slot_key"]


def slot_key(item: EmbeddingUpsert) -> str:
    return f"{item.tenant_id}/{item.doc_id}/{item.chunk_index}"


def payload(item: EmbeddingUpsert) -> dict[str, object]:
    """The Qdrant payload of a chunk point."""
    return {
        "tenant_id": item.tenant_id,
        "doc_id": item.doc_id,
        "chunk_index": item.chunk_index,
        "chunk_count": item.chunk_count,
        "version": item.version,
        "text": item.text,
        "content_hash": item.content_hash,
        "model": item.model,
        "metadata": item.metadata,
    }


def is_reuse(item: EmbeddingUpsert) -> bool:
    """An upsert without a vector: the text is unchanged, only the stored point's version moves."""
    return item.op != DELETE and item.dim == 0 and not item.vector


def retag_payload(item: EmbeddingUpsert) -> dict[str, object]:
    """What a retag sets on every stored point of the document: the document-level keys of the new
    version. The slot's own keys stay as stored, and so does ``model``: the vector is not remade."""
    return {k: v for k, v in payload(item).items() if k not in SLOT_KEYS and k != "model"}


@dataclass(frozen=True)
class Retag:
    """Move a document's stored points from ``previous`` to the item's version (one store write)."""

    position: int
    previous: int


@dataclass
class Plan:
    #: (tenant, version, repair) -> positions in the batch to upsert, in order; a repair may
    #: rewrite a point of the same version
    upserts: dict[tuple[str, int, bool], list[int]] = field(default_factory=dict)
    #: (tenant, version) -> positions whose stored point keeps its vector and takes this version
    reuses: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    #: (tenant, doc_id, version): remove the document's points with a lower version (after upserts)
    cleanups: list[tuple[str, str, int]] = field(default_factory=list)
    #: (tenant, doc_id, version): remove the document's points up to this version
    deletes: list[tuple[str, str, int]] = field(default_factory=list)
    #: unchanged documents re-published: their stored points take the new version
    retags: list[Retag] = field(default_factory=list)
    #: verdict per position
    verdicts: list[Verdict] = field(default_factory=list)
    doc_states: dict[str, DocState] = field(default_factory=dict)
    slots: dict[str, list[object]] = field(default_factory=dict)


def plan_batch(
    items: Sequence[EmbeddingUpsert],
    doc_states: Mapping[str, DocState | None],
    slots: Mapping[str, list[object] | None],
    repairs: Sequence[bool] | None = None,
    retags: Sequence[int | None] | None = None,
) -> Plan:
    """Plan a batch in partition order. Upserts run first, then retags, cleanups and deletes.

    ``retags``: per position, the previous version a retag record moves its document from: one
    store operation, which applies only if the store holds every chunk at exactly that version (else
    it is dead-lettered). A replay (the document is at the retag's version or later) is a duplicate.
    The slot rows keep the version their point was written at: the document's version is checked
    before any slot's, and a later version is higher than both.

    Running every upsert before any delete is safe because each delete is version-bounded:
    it only removes points older than the version that caused it.
    """
    plan = Plan()
    states: dict[str, DocState | None] = dict(doc_states)
    slot_state: dict[str, list[object] | None] = dict(slots)
    for pos, item in enumerate(items):
        key = item.key
        state = states.get(key)
        repair = bool(repairs and repairs[pos])
        if item.op == DELETE:
            verdict = judge(state, item.version, is_delete=True, repair=repair)
            if verdict in (Verdict.APPLY, Verdict.REPAIR):
                plan.deletes.append((item.tenant_id, item.doc_id, item.version))
            if verdict is Verdict.APPLY:
                states[key] = plan.doc_states[key] = DocState(item.version, deleted=True)
            plan.verdicts.append(verdict)
            continue
        previous = retags[pos] if retags else None
        if previous is not None:
            plan.verdicts.append(_retag(plan, pos, item, state, previous))
            if plan.verdicts[-1] is Verdict.APPLY:
                states[key] = plan.doc_states[key] = DocState(item.version)
            continue
        verdict = judge(state, item.version, is_delete=False, repair=repair)
        if verdict is Verdict.STALE:
            plan.verdicts.append(verdict)
            continue
        skey = slot_key(item)
        current = slot_state.get(skey)
        if not repair and current is not None and int(current[0]) >= item.version:  # type: ignore[call-overload]
            plan.verdicts.append(Verdict.DUPLICATE)
            continue
        if is_reuse(item):
            plan.reuses.setdefault((item.tenant_id, item.version), []).append(pos)
        else:
            plan.upserts.setdefault((item.tenant_id, item.version, repair), []).append(pos)
        slot_state[skey] = plan.slots[skey] = [item.version, item.content_hash]
        if verdict is Verdict.APPLY:
            states[key] = plan.doc_states[key] = DocState(item.version)
        if item.chunk_index == item.chunk_count - 1:
            plan.cleanups.append((item.tenant_id, item.doc_id, item.version))
        plan.verdicts.append(verdict)
    return plan


def _retag(plan: Plan, pos: int, item: EmbeddingUpsert, state: DocState | None, previous: int) -> Verdict:
    if state is not None and state.version >= item.version:
        return Verdict.DUPLICATE if state.version == item.version and not state.deleted else Verdict.STALE
    # the store decides: it moves the points only if it holds every chunk at ``previous`` (a reindex
    # or a restore may have stored them without this stage's row saying so)
    plan.retags.append(Retag(pos, previous))
    return Verdict.APPLY
